-- drug_resale 倒卖医保药品 (issue #16): one person accumulating the same drug at several institutions far beyond
-- its course. For each day a person was billed a drug, the window is that day and the resale_window_days − 1
-- days before it (any institution); it is flagged when the fund-line quantity in it exceeds
-- resale_qty_factor × the course quantity (kb_hilist.max_cnt_per_day × resale_course_days, from the kb row in
-- force on the window's last day) and the lines come from at least resale_min_institutions institutions.
-- Every fund line inside a flagged window is a suspect, described by the largest flagged window it belongs to
-- (then the earliest). Thresholds: kb_param resale_window_days, resale_course_days, resale_qty_factor,
-- resale_min_institutions; kb_hilist.max_cnt_per_day. Parameter list_types: the 目录类别 this instance covers.
WITH drug AS (
  SELECT f.*, k.max_cnt_per_day, coalesce(k.hilist_name, f.hilist_name, f.hilist_code) AS item_name
  FROM fee f
  JOIN kb_hilist k ON k.hilist_code = f.hilist_code AND {{ in_force('k', 'f.fee_date') }}
  WHERE f.is_fund AND k.max_cnt_per_day IS NOT NULL AND k.max_cnt_per_day > 0
    AND coalesce(k.list_type, '') IN {{ params.list_types }}
),
anchor AS (
  SELECT DISTINCT psn_no, hilist_code, fee_date, max_cnt_per_day FROM drug
),
win AS (
  SELECT a.psn_no, a.hilist_code, a.fee_date AS end_date, a.max_cnt_per_day,
         a.max_cnt_per_day * {{ param('resale_course_days') }} AS course_cnt,
         min(d.fee_date) AS start_date, sum(d.cnt) AS win_cnt, count(*) AS win_lines,
         count(DISTINCT d.fixmedins_code) AS win_insts
  FROM anchor a
  JOIN drug d ON d.psn_no = a.psn_no AND d.hilist_code = a.hilist_code
   AND d.fee_date <= a.fee_date AND d.fee_date > date_sub(a.fee_date, CAST({{ param('resale_window_days') }} AS INT))
  GROUP BY a.psn_no, a.hilist_code, a.fee_date, a.max_cnt_per_day
),
flagged AS (
  SELECT * FROM win
  WHERE win_cnt > course_cnt * {{ param('resale_qty_factor') }}
    AND win_insts >= {{ param('resale_min_institutions') }}
),
hit AS (
  SELECT d.*, w.start_date, w.end_date, w.win_cnt, w.win_lines, w.win_insts, w.course_cnt,
         w.max_cnt_per_day AS win_cap,
         row_number() OVER (PARTITION BY d.mdtrt_id, d.feedetl_sn
                            ORDER BY w.win_cnt DESC, w.end_date) AS rn
  FROM drug d
  JOIN flagged w ON w.psn_no = d.psn_no AND w.hilist_code = d.hilist_code
   AND d.fee_date <= w.end_date AND d.fee_date > date_sub(w.end_date, CAST({{ param('resale_window_days') }} AS INT))
)
SELECT
  h.fixmedins_code, h.psn_no, h.mdtrt_id, h.setl_id, h.feedetl_sn, h.hilist_code,
  h.fee_ocur_time AS event_time,
  {{ month('h.fee_ocur_time') }} AS period,
  h.det_item_fee_sumamt AS amount,
  concat('参保人', h.psn_no, '自', {{ ymd('h.start_date') }}, '至', {{ ymd('h.end_date') }}, '（',
         CAST(CAST({{ param('resale_window_days') }} AS INT) AS STRING), '日窗口内）在', CAST(h.win_insts AS STRING),
         '家机构累计使用“', h.item_name, '”(', h.hilist_code, ')', {{ qty('h.win_cnt') }}, '（',
         CAST(h.win_lines AS STRING), '条明细），为疗程用量', {{ qty('h.course_cnt') }}, '（每日限量', {{ qty('h.win_cap') }},
         '×', CAST(CAST({{ param('resale_course_days') }} AS INT) AS STRING), '日）的',
         {{ qty('round(h.win_cnt / h.course_cnt, 2)') }}, '倍，超过', {{ qty(param('resale_qty_factor')) }}, '倍；本条',
         {{ ymd('h.fee_date') }}, '在', h.fixmedins_code, '数量', {{ qty('h.cnt') }}, '，金额',
         {{ num('h.det_item_fee_sumamt') }}, '元。') AS evidence
FROM hit h
WHERE h.rn = 1
