-- second_line 限二线用药: a fund line of a second-line drug (kb_hilist.second_line = '1', knowledge point
-- kb_hilist.line_group) when the same person had no line of a first-line drug of that knowledge point
-- (second_line = '0', same line_group; any institution, fund-paid or not) in the preceding window: fee time
-- strictly before the line's and fee date at most kb_param.second_line_window_days days before its date.
-- Only knowledge points whose first-line drugs the kb names are evaluated; without the window nothing is.
-- The kb row in force on the line's date is used (kb_valid_from/kb_valid_to).
-- Parameter list_types: the 目录类别 (kb_hilist.list_type) this instance covers.
WITH win AS (
  SELECT CAST(max(value) AS INT) AS days FROM kb_param WHERE key = 'second_line_window_days'
),
second_lines AS (
  SELECT f.*, k.line_group, k.kb_release, k.kb_source, w.days AS win_days,
         coalesce(k.hilist_name, f.hilist_name, f.hilist_code) AS item_name
  FROM fee f
  JOIN kb_hilist k ON k.hilist_code = f.hilist_code AND {{ in_force('k', 'f.fee_date') }}
  CROSS JOIN win w
  WHERE f.is_fund AND k.second_line = '1' AND k.line_group IS NOT NULL AND w.days IS NOT NULL
    AND coalesce(k.list_type, '') IN {{ params.list_types }}
),
first_lines AS (
  SELECT f.psn_no, f.fee_ocur_time, f.fee_date, k.line_group
  FROM fee f
  JOIN kb_hilist k ON k.hilist_code = f.hilist_code AND {{ in_force('k', 'f.fee_date') }}
  WHERE k.second_line = '0' AND k.line_group IS NOT NULL
    AND f.psn_no IN (SELECT psn_no FROM second_lines)
),
known AS (
  SELECT DISTINCT line_group FROM kb_hilist WHERE second_line = '0' AND line_group IS NOT NULL
),
unprepared AS (
  SELECT s.* FROM second_lines s
  LEFT ANTI JOIN first_lines x
    ON x.psn_no = s.psn_no AND x.line_group = s.line_group
   AND x.fee_ocur_time < s.fee_ocur_time AND x.fee_date >= date_sub(s.fee_date, s.win_days)
)
SELECT
  u.fixmedins_code, u.psn_no, u.mdtrt_id, u.setl_id, u.feedetl_sn, u.hilist_code,
  u.fee_ocur_time AS event_time,
  {{ month('u.fee_ocur_time') }} AS period,
  u.det_item_fee_sumamt AS amount,
  concat('参保人', u.psn_no, '于', {{ ymd('u.fee_date') }}, '使用限二线药品“', u.item_name, '”(', u.hilist_code,
         ')，此前', CAST(u.win_days AS STRING), '天内未使用“', u.line_group, '”的一线药品；金额',
         {{ num('u.det_item_fee_sumamt') }}, '元由基金支付（知识库', coalesce(u.kb_release, '本地'),
         CASE WHEN u.kb_source IS NULL THEN '' ELSE concat('，', u.kb_source) END, '）。') AS evidence
FROM unprepared u
WHERE u.line_group IN (SELECT line_group FROM known)
