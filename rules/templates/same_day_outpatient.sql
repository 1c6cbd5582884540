-- same_day_outpatient 同日多次门诊结算 (extension, catalogue R49): outpatient visits of one person at one
-- institution on one calendar day, beyond kb_param.same_day_outpatient_visits_max; the visits after the first N
-- (by begntime, then mdtrt_id) are suspects. Parameters med_types / in_med_types: the instance covers outpatient
-- visits whose med_type is (true) or is not (false) in med_types.
WITH visits AS (
  SELECT v.*,
         row_number() OVER (PARTITION BY v.psn_no, v.fixmedins_code, v.adm_date ORDER BY v.begntime, v.mdtrt_id) AS visit_no,
         count(*) OVER (PARTITION BY v.psn_no, v.fixmedins_code, v.adm_date) AS day_visits,
         first_value(v.mdtrt_id) OVER (PARTITION BY v.psn_no, v.fixmedins_code, v.adm_date
                                       ORDER BY v.begntime, v.mdtrt_id) AS first_mdtrt_id
  FROM visit v
  WHERE NOT v.is_inpatient AND v.adm_date IS NOT NULL
    AND (coalesce(v.med_type, '') IN {{ params.med_types }}) = {{ params.in_med_types }}
)
SELECT
  v.fixmedins_code, v.psn_no, v.mdtrt_id, CAST(NULL AS STRING) AS setl_id, CAST(NULL AS STRING) AS feedetl_sn,
  CAST(NULL AS STRING) AS hilist_code,
  v.begntime AS event_time,
  {{ month('v.begntime') }} AS period,
  coalesce(a.fund_amt, 0) AS amount,
  concat('参保人', v.psn_no, '于', {{ ymd('v.adm_date') }}, '在', v.fixmedins_code, CASE WHEN v.med_type = '41' THEN '同日购药结算' ELSE '同日门诊就诊' END,
         CAST(v.day_visits AS STRING), '次（首次为', v.first_mdtrt_id, '），本次', v.mdtrt_id, '（', {{ ymdhm('v.begntime') }}, '）为第', CAST(v.visit_no AS STRING),
         '次，超过每日', CAST(CAST({{ param('same_day_outpatient_visits_max') }} AS INT) AS STRING),
         '次；基金支付范围明细金额', {{ num('coalesce(a.fund_amt, 0)') }}, '元。') AS evidence
FROM visits v
LEFT JOIN visit_fund a ON a.mdtrt_id = v.mdtrt_id
WHERE v.visit_no > {{ param('same_day_outpatient_visits_max') }}
