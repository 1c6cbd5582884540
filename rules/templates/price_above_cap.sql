-- price_above_cap 超限价收费: pric > kb_hilist.pric_uplmt_amt, or pric > the line's own pric_uplmt_amt (a line
-- above either known cap is a suspect; the lower cap is cited). Fund lines only.
-- Parameter list_types: the 目录类别 (kb_hilist.list_type, '' = not in kb_hilist) this instance covers.
WITH capped AS (
  SELECT f.*, coalesce(k.hilist_name, f.hilist_name, f.hilist_code) AS item_name,
         k.pric_uplmt_amt AS kb_cap,
         CASE WHEN k.pric_uplmt_amt IS NOT NULL AND (f.pric_uplmt_amt IS NULL OR k.pric_uplmt_amt <= f.pric_uplmt_amt)
              THEN k.pric_uplmt_amt ELSE f.pric_uplmt_amt END AS cap
  FROM fee f
  LEFT JOIN kb_hilist k ON k.hilist_code = f.hilist_code AND {{ in_force('k', 'f.fee_date') }}
  WHERE f.is_fund
    AND coalesce(k.list_type, '') IN {{ params.list_types }}
)
SELECT
  c.fixmedins_code, c.psn_no, c.mdtrt_id, c.setl_id, c.feedetl_sn, c.hilist_code,
  c.fee_ocur_time AS event_time,
  {{ month('c.fee_ocur_time') }} AS period,
  c.det_item_fee_sumamt AS amount,
  concat('“', c.item_name, '”(', c.hilist_code, ')于', {{ ymd('c.fee_date') }}, '按单价', {{ qty('c.pric') }},
         '元计费，超过', CASE WHEN c.kb_cap IS NOT NULL AND c.cap = c.kb_cap THEN '医保限价' ELSE '定价上限' END,
         {{ qty('c.cap') }}, '元；数量', {{ qty('c.cnt') }}, '，金额', {{ num('c.det_item_fee_sumamt') }}, '元由基金支付。') AS evidence
FROM capped c
WHERE c.pric > c.cap
