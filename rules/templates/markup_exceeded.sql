-- markup_exceeded 超加成率: pric > (the latest `purchase` pric of the item at the same institution at or before
-- fee_ocur_time) × kb_hilist.markup_max_ratio; no priced purchase yet → not evaluated. Purchases at the same
-- latest time: the highest price is used. Fund lines only.
-- Parameter list_types: the 目录类别 (kb_hilist.list_type, '' = none) this instance covers.
WITH sold AS (
  SELECT f.*, k.markup_max_ratio, coalesce(k.hilist_name, f.hilist_name, f.hilist_code) AS item_name
  FROM fee f
  JOIN kb_hilist k ON k.hilist_code = f.hilist_code AND {{ in_force('k', 'f.fee_date') }}
  WHERE f.is_fund AND k.markup_max_ratio IS NOT NULL
    AND coalesce(k.list_type, '') IN {{ params.list_types }}
),
purchases AS (
  -- one price per institution, item and time: the highest when several purchases share it
  SELECT fixmedins_code, hilist_code, occur_time, max(pric) AS pric
  FROM inv_movement
  WHERE mvmt_type = 'purchase' AND pric IS NOT NULL
  GROUP BY fixmedins_code, hilist_code, occur_time
),
-- Set-based "latest purchase at or before the sale": sales and purchases of an item at an institution in one
-- time order (a purchase before a sale at the same time); the running max of purchase times is the latest.
events AS (
  SELECT fixmedins_code, hilist_code, fee_ocur_time AS t, 1 AS kind, mdtrt_id, feedetl_sn FROM sold
  UNION ALL
  SELECT fixmedins_code, hilist_code, occur_time AS t, 0 AS kind, CAST(NULL AS STRING) AS mdtrt_id,
         CAST(NULL AS STRING) AS feedetl_sn
  FROM purchases
),
latest_time AS (
  SELECT mdtrt_id, feedetl_sn, kind,
         max(CASE WHEN kind = 0 THEN t END) OVER (PARTITION BY fixmedins_code, hilist_code ORDER BY t, kind
                                                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS purchase_time
  FROM events
),
latest AS (
  SELECT s.*, p.pric AS purchase_pric, p.occur_time AS purchase_time
  FROM sold s
  JOIN latest_time x ON x.kind = 1 AND x.mdtrt_id = s.mdtrt_id AND x.feedetl_sn = s.feedetl_sn
  JOIN purchases p ON p.fixmedins_code = s.fixmedins_code AND p.hilist_code = s.hilist_code
                  AND p.occur_time = x.purchase_time
)
SELECT
  l.fixmedins_code, l.psn_no, l.mdtrt_id, l.setl_id, l.feedetl_sn, l.hilist_code,
  l.fee_ocur_time AS event_time,
  {{ month('l.fee_ocur_time') }} AS period,
  l.det_item_fee_sumamt AS amount,
  concat('“', l.item_name, '”(', l.hilist_code, ')于', {{ ymd('l.fee_date') }}, '销售单价', {{ qty('l.pric') }},
         '元，最近一次采购（', {{ ymd('l.purchase_time') }}, '）单价', {{ qty('l.purchase_pric') }}, '元，加成上限',
         {{ qty('l.markup_max_ratio') }}, '倍即', {{ qty('l.purchase_pric * l.markup_max_ratio') }},
         '元；金额', {{ num('l.det_item_fee_sumamt') }}, '元由基金支付。') AS evidence
FROM latest l
WHERE l.pric > l.purchase_pric * l.markup_max_ratio
