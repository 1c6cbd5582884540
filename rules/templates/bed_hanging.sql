-- bed_hanging 挂床住院: an inpatient stay with at least kb_param.bed_hanging_min_days consecutive calendar days
-- (from the admission date to the discharge date, or on when not discharged) on each of which it was billed
-- something on fund lines, and only items of the bed/consultation/nursing classes (parameter bed_only_types:
-- med_chrgitm_type 01, 02, 07; the line's type, else kb_hilist's). A day without a fund line, or with any other
-- fund line, breaks the run; self-paid lines are ignored. The longest run is cited.
WITH stays AS (
  SELECT mdtrt_id, adm_date, dscg_date FROM visit WHERE is_inpatient AND adm_date IS NOT NULL
),
days AS (
  SELECT f.mdtrt_id, f.fee_date,
         max(CASE WHEN coalesce(f.med_chrgitm_type, k.med_chrgitm_type, '') IN {{ params.bed_only_types }}
                  THEN 0 ELSE 1 END) AS has_other
  FROM fee f
  JOIN stays s ON s.mdtrt_id = f.mdtrt_id
  LEFT JOIN kb_hilist k ON k.hilist_code = f.hilist_code AND {{ in_force('k', 'f.fee_date') }}
  WHERE f.is_fund AND f.fee_date >= s.adm_date AND (s.dscg_date IS NULL OR f.fee_date <= s.dscg_date)
  GROUP BY f.mdtrt_id, f.fee_date
),
islands AS (
  SELECT d.mdtrt_id, d.fee_date,
         datediff(d.fee_date, s.adm_date) - row_number() OVER (PARTITION BY d.mdtrt_id ORDER BY d.fee_date) AS island
  FROM days d
  JOIN stays s ON s.mdtrt_id = d.mdtrt_id
  WHERE d.has_other = 0
),
runs AS (
  SELECT mdtrt_id, min(fee_date) AS run_start, max(fee_date) AS run_end, count(*) AS run_days,
         row_number() OVER (PARTITION BY mdtrt_id ORDER BY count(*) DESC, min(fee_date)) AS rn
  FROM islands
  GROUP BY mdtrt_id, island
)
SELECT
  v.fixmedins_code, v.psn_no, v.mdtrt_id, CAST(NULL AS STRING) AS setl_id, CAST(NULL AS STRING) AS feedetl_sn,
  CAST(NULL AS STRING) AS hilist_code,
  v.begntime AS event_time,
  {{ month('v.begntime') }} AS period,
  coalesce(a.fund_amt, 0) AS amount,
  concat('住院', v.mdtrt_id, '（', {{ ymd('v.adm_date') }}, '入院）自', {{ ymd('r.run_start') }}, '至', {{ ymd('r.run_end') }},
         '连续', CAST(r.run_days AS STRING), '天每天仅计费床位费、诊察费、护理费，达到挂床判定天数',
         CAST(CAST({{ param('bed_hanging_min_days') }} AS INT) AS STRING), '天；基金支付范围明细金额',
         {{ num('coalesce(a.fund_amt, 0)') }}, '元。') AS evidence
FROM runs r
JOIN visit v ON v.mdtrt_id = r.mdtrt_id
LEFT JOIN visit_fund a ON a.mdtrt_id = r.mdtrt_id
WHERE r.rn = 1
  AND r.run_days >= {{ param('bed_hanging_min_days') }}
