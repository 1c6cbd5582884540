-- bundled_item 项目包含/互斥: a kb_item_pair (a, b) — `includes` (a includes b) or `exclusive` (not both) — with
-- both items billed on fund lines of the same person inside the pair's window: `day` = same calendar day,
-- `visit` = same mdtrt_id, `hour` = fee times at most 60 minutes apart (either order). The b line is the
-- suspect, reported once (the first matching a line is cited). Pairs and names: the kb rows in force on the b
-- line's date.
-- Parameter list_types: the 目录类别 of the b item (kb_hilist.list_type, '' = none) this instance covers.
WITH pairs AS (
  SELECT DISTINCT hilist_code_a, hilist_code_b, relation, `window` AS win, kb_valid_from, kb_valid_to
  FROM kb_item_pair
  WHERE hilist_code_a <> hilist_code_b
),
-- the fund lines of the pairs' items, each side read once (a CTE read twice would be materialised whole)
b_lines AS (
  SELECT * FROM fee WHERE is_fund AND hilist_code IN (SELECT hilist_code_b FROM pairs)
),
a_lines AS (
  SELECT * FROM fee WHERE is_fund AND hilist_code IN (SELECT hilist_code_a FROM pairs)
),
hits AS (
  SELECT b.*, p.relation, p.win, a.hilist_code AS a_code, a.mdtrt_id AS a_mdtrt_id, a.feedetl_sn AS a_sn,
         a.fee_ocur_time AS a_time,
         row_number() OVER (PARTITION BY b.mdtrt_id, b.feedetl_sn
                            ORDER BY p.hilist_code_a, a.fee_ocur_time, a.mdtrt_id, {{ sn_key('a.feedetl_sn') }},
                                     p.relation, p.win) AS rn
  FROM pairs p
  JOIN b_lines b ON b.hilist_code = p.hilist_code_b
  JOIN a_lines a ON a.hilist_code = p.hilist_code_a AND a.psn_no = b.psn_no
  WHERE {{ in_force('p', 'b.fee_date') }}
    AND ((p.win = 'day' AND a.fee_date = b.fee_date)
     OR (p.win = 'visit' AND a.mdtrt_id = b.mdtrt_id)
     OR (p.win = 'hour' AND abs(timestampdiff(SECOND, a.fee_ocur_time, b.fee_ocur_time)) <= 3600))
)
SELECT
  h.fixmedins_code, h.psn_no, h.mdtrt_id, h.setl_id, h.feedetl_sn, h.hilist_code,
  h.fee_ocur_time AS event_time,
  {{ month('h.fee_ocur_time') }} AS period,
  h.det_item_fee_sumamt AS amount,
  concat('参保人', h.psn_no, '于', {{ ymdhm('h.fee_ocur_time') }}, '计费“', coalesce(kb.hilist_name, h.hilist_name, h.hilist_code),
         '”(', h.hilist_code, ')，',
         CASE h.win WHEN 'day' THEN '同日' WHEN 'visit' THEN '同一就诊' ELSE '60分钟内' END,
         '（', {{ ymdhm('h.a_time') }}, '，就诊', h.a_mdtrt_id, '）已计费“', coalesce(ka.hilist_name, h.a_code), '”(', h.a_code, ')，',
         CASE h.relation WHEN 'includes' THEN '后者已包含前者，不得另行收费' ELSE '两者互斥，不得同时收费' END,
         '；金额', {{ num('h.det_item_fee_sumamt') }}, '元由基金支付。') AS evidence
FROM hits h
LEFT JOIN kb_hilist kb ON kb.hilist_code = h.hilist_code AND {{ in_force('kb', 'h.fee_date') }}
LEFT JOIN kb_hilist ka ON ka.hilist_code = h.a_code AND {{ in_force('ka', 'h.fee_date') }}
WHERE h.rn = 1
  AND coalesce(kb.list_type, '') IN {{ params.list_types }}
