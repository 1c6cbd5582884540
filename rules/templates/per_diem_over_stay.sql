-- per_diem_over_stay 按日计费超住院天数: for an item billed per inpatient day (kb_hilist.per_diem = 1), Σcnt of
-- its fund lines in one stay > the stay's days (discharge date − admission date, at least 1). Every fund line
-- of that item in the stay is a suspect. Stays without a discharge time are not evaluated.
WITH stays AS (
  SELECT v.mdtrt_id, v.adm_date, v.dscg_date,
         greatest(datediff(v.dscg_date, v.adm_date), 1) AS stay_days
  FROM visit v
  WHERE v.is_inpatient AND v.adm_date IS NOT NULL AND v.dscg_date IS NOT NULL
),
billed AS (
  SELECT f.*, s.adm_date, s.dscg_date, s.stay_days,
         coalesce(k.hilist_name, f.hilist_name, f.hilist_code) AS item_name
  FROM fee f
  JOIN kb_hilist k ON k.hilist_code = f.hilist_code AND {{ in_force('k', 'f.fee_date') }}
  JOIN stays s ON s.mdtrt_id = f.mdtrt_id
  WHERE f.is_fund AND k.per_diem = '1'
),
totals AS (
  SELECT mdtrt_id, hilist_code, sum(cnt) AS stay_cnt, count(*) AS stay_lines
  FROM billed
  GROUP BY mdtrt_id, hilist_code
)
SELECT
  b.fixmedins_code, b.psn_no, b.mdtrt_id, b.setl_id, b.feedetl_sn, b.hilist_code,
  b.fee_ocur_time AS event_time,
  {{ month('b.fee_ocur_time') }} AS period,
  b.det_item_fee_sumamt AS amount,
  concat('住院', b.mdtrt_id, '（', {{ ymd('b.adm_date') }}, '入院，', {{ ymd('b.dscg_date') }}, '出院，按',
         CAST(b.stay_days AS STRING), '天计）按日计费项目“', b.item_name, '”(', b.hilist_code, ')共计',
         {{ qty('t.stay_cnt') }}, '（', CAST(t.stay_lines AS STRING), '条明细），超过住院天数；本条数量',
         {{ qty('b.cnt') }}, '，金额', {{ num('b.det_item_fee_sumamt') }}, '元。') AS evidence
FROM billed b
JOIN totals t ON t.mdtrt_id = b.mdtrt_id AND t.hilist_code = b.hilist_code
WHERE t.stay_cnt > b.stay_days
