-- pay_days_exceeded 超支付天数: an item billed (fund lines) on more than kb_hilist.max_pay_days distinct calendar
-- days in one inpatient stay; the suspects are the lines on the days after the max_pay_days-th distinct day.
-- Parameter list_types: the 目录类别 (kb_hilist.list_type, '' = none) this instance covers.
WITH billed AS (
  SELECT f.*, k.max_pay_days, coalesce(k.hilist_name, f.hilist_name, f.hilist_code) AS item_name,
         dense_rank() OVER (PARTITION BY f.mdtrt_id, f.hilist_code ORDER BY f.fee_date) AS day_no
  FROM fee f
  JOIN kb_hilist k ON k.hilist_code = f.hilist_code AND {{ in_force('k', 'f.fee_date') }}
  JOIN visit v ON v.mdtrt_id = f.mdtrt_id
  WHERE f.is_fund AND k.max_pay_days IS NOT NULL AND v.is_inpatient
    AND coalesce(k.list_type, '') IN {{ params.list_types }}
),
totals AS (
  SELECT mdtrt_id, hilist_code, max(day_no) AS n_days FROM billed GROUP BY mdtrt_id, hilist_code
)
SELECT
  b.fixmedins_code, b.psn_no, b.mdtrt_id, b.setl_id, b.feedetl_sn, b.hilist_code,
  b.fee_ocur_time AS event_time,
  {{ month('b.fee_ocur_time') }} AS period,
  b.det_item_fee_sumamt AS amount,
  concat('住院', b.mdtrt_id, '中“', b.item_name, '”(', b.hilist_code, ')共在', CAST(t.n_days AS STRING),
         '个不同日期计费，超过最多支付', CAST(b.max_pay_days AS STRING), '天；本条为第', CAST(b.day_no AS STRING),
         '个计费日（', {{ ymd('b.fee_date') }}, '），金额', {{ num('b.det_item_fee_sumamt') }}, '元由基金支付。') AS evidence
FROM billed b
JOIN totals t ON t.mdtrt_id = b.mdtrt_id AND t.hilist_code = b.hilist_code
WHERE b.day_no > b.max_pay_days
