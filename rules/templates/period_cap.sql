-- period_cap 周期超频次: Σcnt of an item per person over the kb_hilist.period_days calendar days ending on a
-- day (that day and the period_days − 1 days before it, any institution) > kb_hilist.period_cnt_max; every
-- fund line of such a day is a suspect. Fund lines only. Thresholds: kb_hilist.period_cnt_max, period_days
-- of the kb row in force on the line's date.
WITH capped AS (
  SELECT f.*, k.period_cnt_max, k.period_days, k.kb_release, k.kb_source,
         coalesce(k.hilist_name, f.hilist_name, f.hilist_code) AS item_name
  FROM fee f
  JOIN kb_hilist k ON k.hilist_code = f.hilist_code AND {{ in_force('k', 'f.fee_date') }}
  WHERE f.is_fund AND k.period_cnt_max IS NOT NULL AND k.period_days IS NOT NULL
),
item_day AS (
  SELECT psn_no, hilist_code, fee_date, max(period_days) AS period_days, sum(cnt) AS day_cnt
  FROM capped
  GROUP BY psn_no, hilist_code, fee_date
),
item_period AS (
  SELECT d.psn_no, d.hilist_code, d.fee_date, sum(e.day_cnt) AS period_cnt, min(e.fee_date) AS first_date
  FROM item_day d
  JOIN item_day e ON e.psn_no = d.psn_no AND e.hilist_code = d.hilist_code
   AND e.fee_date <= d.fee_date AND e.fee_date > date_sub(d.fee_date, CAST(d.period_days AS INT))
  GROUP BY d.psn_no, d.hilist_code, d.fee_date
)
SELECT
  c.fixmedins_code, c.psn_no, c.mdtrt_id, c.setl_id, c.feedetl_sn, c.hilist_code,
  c.fee_ocur_time AS event_time,
  {{ month('c.fee_ocur_time') }} AS period,
  c.det_item_fee_sumamt AS amount,
  concat('参保人', c.psn_no, '自', {{ ymd('p.first_date') }}, '至', {{ ymd('c.fee_date') }}, '（', CAST(c.period_days AS STRING),
         '天周期内）使用“', c.item_name, '”(', c.hilist_code, ')共', {{ qty('p.period_cnt') }}, '次，超过周期频次上限',
         {{ qty('c.period_cnt_max') }}, '次；本条数量', {{ qty('c.cnt') }}, '，金额', {{ num('c.det_item_fee_sumamt') }},
         '元（知识库', coalesce(c.kb_release, '本地'),
         CASE WHEN c.kb_source IS NULL THEN '' ELSE concat('，', c.kb_source) END, '）。') AS evidence
FROM capped c
JOIN item_period p ON p.psn_no = c.psn_no AND p.hilist_code = c.hilist_code AND p.fee_date = c.fee_date
WHERE p.period_cnt > c.period_cnt_max
