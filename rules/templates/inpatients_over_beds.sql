-- inpatients_over_beds 在院人数超核定床位 (extension, catalogue R62): per institution and calendar day, the
-- in-hospital count (stays with admission date <= day < discharge date; open stays count on) exceeds
-- fixmedins.aprv_bed_cnt × kb_param.bed_occupancy_max_ratio. The stays admitted on such a day (and staying
-- overnight) are the suspects. Institutions without aprv_bed_cnt are not evaluated.
WITH stays AS (
  SELECT * FROM visit WHERE is_inpatient AND adm_date IS NOT NULL
),
events AS (
  SELECT fixmedins_code, adm_date AS d, 1 AS delta FROM stays
  UNION ALL
  SELECT fixmedins_code, dscg_date AS d, -1 AS delta FROM stays WHERE dscg_date IS NOT NULL
),
census AS (
  SELECT fixmedins_code, d,
         sum(sum(delta)) OVER (PARTITION BY fixmedins_code ORDER BY d ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS in_hosp
  FROM events
  GROUP BY fixmedins_code, d
)
SELECT
  s.fixmedins_code, s.psn_no, s.mdtrt_id, CAST(NULL AS STRING) AS setl_id, CAST(NULL AS STRING) AS feedetl_sn,
  CAST(NULL AS STRING) AS hilist_code,
  s.begntime AS event_time,
  {{ month('s.begntime') }} AS period,
  coalesce(a.fund_amt, 0) AS amount,
  concat(s.fixmedins_code, '核定床位', CAST(i.aprv_bed_cnt AS STRING), '张，', {{ ymd('s.adm_date') }}, '在院人数达',
         CAST(c.in_hosp AS STRING), '人，超过核定床位×', {{ qty(param('bed_occupancy_max_ratio')) }}, '；当日入院的住院',
         s.mdtrt_id, '（参保人', s.psn_no, '）为疑点；基金支付范围明细金额', {{ num('coalesce(a.fund_amt, 0)') }}, '元。') AS evidence
FROM stays s
JOIN census c ON c.fixmedins_code = s.fixmedins_code AND c.d = s.adm_date
JOIN institution i ON i.fixmedins_code = s.fixmedins_code
LEFT JOIN visit_fund a ON a.mdtrt_id = s.mdtrt_id
WHERE (s.dscg_date IS NULL OR s.dscg_date > s.adm_date)
  AND i.aprv_bed_cnt IS NOT NULL
  AND c.in_hosp > i.aprv_bed_cnt * {{ param('bed_occupancy_max_ratio') }}
