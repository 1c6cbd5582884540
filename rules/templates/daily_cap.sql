-- daily_cap 超每日限量: Σcnt of an item per person and calendar day > kb_hilist.max_cnt_per_day.
-- Every fund line of that item-day is a suspect. Threshold: kb_hilist.max_cnt_per_day.
WITH capped AS (
  SELECT f.*, k.max_cnt_per_day, coalesce(k.hilist_name, f.hilist_name, f.hilist_code) AS item_name
  FROM fee f
  JOIN kb_hilist k ON k.hilist_code = f.hilist_code AND {{ in_force('k', 'f.fee_date') }}
  WHERE f.is_fund AND k.max_cnt_per_day IS NOT NULL
),
item_day AS (
  SELECT psn_no, hilist_code, fee_date, sum(cnt) AS day_cnt, count(*) AS day_lines
  FROM capped
  GROUP BY psn_no, hilist_code, fee_date
)
SELECT
  c.fixmedins_code, c.psn_no, c.mdtrt_id, c.setl_id, c.feedetl_sn, c.hilist_code,
  c.fee_ocur_time AS event_time,
  {{ month('c.fee_ocur_time') }} AS period,
  c.det_item_fee_sumamt AS amount,
  concat('参保人', c.psn_no, '于', {{ ymd('c.fee_date') }}, '使用“', c.item_name, '”(', c.hilist_code, ')共',
         {{ num('d.day_cnt') }}, '（', CAST(d.day_lines AS STRING), '条明细），超过每日限量',
         {{ num('c.max_cnt_per_day') }}, '；本条数量', {{ num('c.cnt') }}, '，金额', {{ num('c.det_item_fee_sumamt') }}, '元。') AS evidence
FROM capped c
JOIN item_day d ON d.psn_no = c.psn_no AND d.hilist_code = c.hilist_code AND d.fee_date = c.fee_date
WHERE d.day_cnt > c.max_cnt_per_day
