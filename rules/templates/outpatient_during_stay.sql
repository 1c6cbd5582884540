-- outpatient_during_stay 住院期间门诊: an outpatient visit (med_type not inpatient, 41 included) of the person, at
-- any institution, on a day strictly between the admission day and the discharge day of one of the person's
-- inpatient stays (stays without a discharge time are not evaluated). The outpatient visit is the suspect.
-- Parameters med_types / in_med_types: the instance covers outpatient visits whose med_type is (true) or is
-- not (false) in med_types.
WITH stays AS (
  SELECT mdtrt_id, psn_no, fixmedins_code, adm_date, dscg_date
  FROM visit
  WHERE is_inpatient AND adm_date IS NOT NULL AND dscg_date IS NOT NULL
),
hits AS (
  SELECT o.*, s.mdtrt_id AS stay_id, s.fixmedins_code AS stay_inst, s.adm_date AS stay_adm, s.dscg_date AS stay_dscg,
         row_number() OVER (PARTITION BY o.mdtrt_id ORDER BY s.adm_date, s.mdtrt_id) AS rn
  FROM visit o
  JOIN stays s ON s.psn_no = o.psn_no AND o.adm_date > s.adm_date AND o.adm_date < s.dscg_date
  WHERE NOT o.is_inpatient
    AND (coalesce(o.med_type, '') IN {{ params.med_types }}) = {{ params.in_med_types }}
)
SELECT
  h.fixmedins_code, h.psn_no, h.mdtrt_id, CAST(NULL AS STRING) AS setl_id, CAST(NULL AS STRING) AS feedetl_sn,
  CAST(NULL AS STRING) AS hilist_code,
  h.begntime AS event_time,
  {{ month('h.begntime') }} AS period,
  coalesce(a.fund_amt, 0) AS amount,
  concat('参保人', h.psn_no, '于', {{ ymd('h.adm_date') }}, '在', h.fixmedins_code, '门诊就诊（', h.mdtrt_id, '，医疗类别',
         coalesce(h.med_type, ''), '），当时正在', h.stay_inst, '住院（', h.stay_id, '，', {{ ymd('h.stay_adm') }}, '入院，',
         {{ ymd('h.stay_dscg') }}, '出院）；本次基金支付范围明细金额', {{ num('coalesce(a.fund_amt, 0)') }}, '元。') AS evidence
FROM hits h
LEFT JOIN visit_fund a ON a.mdtrt_id = h.mdtrt_id
WHERE h.rn = 1
