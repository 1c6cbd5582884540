-- day_surgery_overstay 日间手术超时限 (extension, catalogue R67): a stay of a day-surgery med_type (parameter
-- med_types, e.g. 28 日间手术) whose discharge date − admission date > kb_param.day_surgery_max_days.
SELECT
  v.fixmedins_code, v.psn_no, v.mdtrt_id, CAST(NULL AS STRING) AS setl_id, CAST(NULL AS STRING) AS feedetl_sn,
  CAST(NULL AS STRING) AS hilist_code,
  v.begntime AS event_time,
  {{ month('v.begntime') }} AS period,
  coalesce(a.fund_amt, 0) AS amount,
  concat('日间手术就诊', v.mdtrt_id, '（医疗类别', v.med_type, '）', {{ ymd('v.adm_date') }}, '入院、', {{ ymd('v.dscg_date') }},
         '出院，住院', CAST(datediff(v.dscg_date, v.adm_date) AS STRING), '天，超过日间手术时限',
         CAST(CAST({{ param('day_surgery_max_days') }} AS INT) AS STRING), '天；基金支付范围明细金额',
         {{ num('coalesce(a.fund_amt, 0)') }}, '元。') AS evidence
FROM visit v
LEFT JOIN visit_fund a ON a.mdtrt_id = v.mdtrt_id
WHERE v.med_type IN {{ params.med_types }}
  AND v.adm_date IS NOT NULL AND v.dscg_date IS NOT NULL
  AND datediff(v.dscg_date, v.adm_date) > {{ param('day_surgery_max_days') }}
