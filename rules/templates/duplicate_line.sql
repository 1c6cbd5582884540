-- duplicate_line 重复计费明细: fund lines with the same mdtrt_id, hilist_code, fee_ocur_time, cnt and pric but a
-- different feedetl_sn; the line with the smallest feedetl_sn stays, the others are suspects. feedetl_sn is
-- ordered by sn_key: leading zeros dropped, then (length, string) — numeric order for digit strings.
-- Parameter chrgitm_types: the line's med_chrgitm_type ('' = none) this instance covers.
-- Set-based: the shared view fee_dup_groups holds the hashes of the groups of identical fund lines (one
-- aggregation per run); only the lines of those groups are ranked, by the five columns themselves.
WITH ranked AS (
  SELECT f.*,
         count(*) OVER (PARTITION BY f.mdtrt_id, f.hilist_code, f.fee_ocur_time, f.cnt, f.pric) AS n_same,
         row_number() OVER (PARTITION BY f.mdtrt_id, f.hilist_code, f.fee_ocur_time, f.cnt, f.pric
                            ORDER BY {{ sn_key('f.feedetl_sn') }}) AS rn,
         first_value(f.feedetl_sn) OVER (PARTITION BY f.mdtrt_id, f.hilist_code, f.fee_ocur_time, f.cnt, f.pric
                                         ORDER BY {{ sn_key('f.feedetl_sn') }}) AS kept_sn
  FROM fee f
  WHERE f.is_fund AND hash(f.mdtrt_id, f.hilist_code, f.fee_ocur_time, f.cnt, f.pric) IN (SELECT h FROM fee_dup_groups)
)
SELECT
  r.fixmedins_code, r.psn_no, r.mdtrt_id, r.setl_id, r.feedetl_sn, r.hilist_code,
  r.fee_ocur_time AS event_time,
  {{ month('r.fee_ocur_time') }} AS period,
  r.det_item_fee_sumamt AS amount,
  concat('就诊', r.mdtrt_id, '中“', coalesce(r.hilist_name, r.hilist_code), '”(', r.hilist_code, ')于',
         {{ ymdhm('r.fee_ocur_time') }}, '以相同数量', {{ qty('r.cnt') }}, '、单价', {{ qty('r.pric') }}, '元计费',
         CAST(r.n_same AS STRING), '条（保留流水号', r.kept_sn, '），流水号', r.feedetl_sn, '为重复明细，金额',
         {{ num('r.det_item_fee_sumamt') }}, '元由基金支付。') AS evidence
FROM ranked r
WHERE r.rn > 1
  AND coalesce(r.med_chrgitm_type, '') IN {{ params.chrgitm_types }}
