-- split_admission 分解住院: a readmission at the same institution 0..readmit_days days (by date) after the
-- person's immediately preceding stay there was discharged, with the same main diagnosis (ICD-10 first 3
-- characters). The readmission is the suspect. Threshold: kb_param.readmit_days.
WITH stays AS (
  SELECT v.*,
         upper(substr(replace(v.dscg_maindiag_code, '.', ''), 1, 3)) AS diag3,
         lag(v.dscg_date) OVER (PARTITION BY v.psn_no, v.fixmedins_code ORDER BY v.begntime, v.mdtrt_id) AS prev_dscg_date,
         lag(upper(substr(replace(v.dscg_maindiag_code, '.', ''), 1, 3))) OVER (PARTITION BY v.psn_no, v.fixmedins_code ORDER BY v.begntime, v.mdtrt_id) AS prev_diag3,
         lag(v.mdtrt_id) OVER (PARTITION BY v.psn_no, v.fixmedins_code ORDER BY v.begntime, v.mdtrt_id) AS prev_mdtrt_id
  FROM visit v
  WHERE v.is_inpatient
),
amounts AS (
  SELECT mdtrt_id, sum(det_item_fee_sumamt) AS amt FROM fee WHERE is_fund GROUP BY mdtrt_id
)
SELECT
  s.fixmedins_code, s.psn_no, s.mdtrt_id, CAST(NULL AS STRING) AS setl_id, CAST(NULL AS STRING) AS feedetl_sn,
  CAST(NULL AS STRING) AS hilist_code,
  s.begntime AS event_time,
  {{ month('s.begntime') }} AS period,
  coalesce(a.amt, 0) AS amount,
  concat('参保人', s.psn_no, '于', {{ ymd('s.prev_dscg_date') }}, '出院（就诊', s.prev_mdtrt_id, '）后',
         CAST(datediff(s.adm_date, s.prev_dscg_date) AS STRING), '天再次入院（', {{ ymd('s.adm_date') }},
         '），主诊断同为', s.diag3, '，未超过', CAST(CAST({{ param('readmit_days') }} AS INT) AS STRING), '天。') AS evidence
FROM stays s
LEFT JOIN amounts a ON a.mdtrt_id = s.mdtrt_id
WHERE s.prev_dscg_date IS NOT NULL
  AND s.diag3 IS NOT NULL AND s.diag3 = s.prev_diag3
  AND datediff(s.adm_date, s.prev_dscg_date) BETWEEN 0 AND {{ param('readmit_days') }}
