-- after_death 死亡后就诊: a visit whose date (begntime's date) is after psn.die_date; the death day itself is
-- not flagged. Parameter inpatient: the instance covers inpatient (true) or outpatient (false) visits.
SELECT
  v.fixmedins_code, v.psn_no, v.mdtrt_id, CAST(NULL AS STRING) AS setl_id, CAST(NULL AS STRING) AS feedetl_sn,
  CAST(NULL AS STRING) AS hilist_code,
  v.begntime AS event_time,
  {{ month('v.begntime') }} AS period,
  coalesce(a.fund_amt, 0) AS amount,
  concat('参保人', v.psn_no, '死亡日期为', {{ ymd('p.die_date') }}, '，但于', {{ ymd('v.adm_date') }}, '在', v.fixmedins_code,
         CASE WHEN v.is_inpatient THEN '入院' ELSE '就诊' END, '（', v.mdtrt_id, '，医疗类别', coalesce(v.med_type, ''),
         '），晚于死亡日期', CAST(datediff(v.adm_date, p.die_date) AS STRING), '天；基金支付范围明细金额',
         {{ num('coalesce(a.fund_amt, 0)') }}, '元。') AS evidence
FROM visit v
JOIN psn p ON p.psn_no = v.psn_no
LEFT JOIN visit_fund a ON a.mdtrt_id = v.mdtrt_id
WHERE p.die_date IS NOT NULL
  AND v.adm_date > p.die_date
  AND v.is_inpatient = {{ params.inpatient }}
