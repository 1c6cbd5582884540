-- inventory_shortfall 进销存不符: per institution and item with inv_movement rows there, each calendar month where
-- the billed cnt to the month's end (every fee_list line, netted, whoever pays) exceeds the supply to the month's
-- end: the earliest stocktake (all stocktake rows at its occur_time) + purchases − purchase returns + adjust_in −
-- adjust_out. Everything is counted from the earliest stocktake's time on (no stocktake: from the start, opening
-- stock 0). `sale`/`sale_return` rows are the pharmacy's own records, not supply. Movement quantities count by
-- their type (absolute values). Months evaluated: those with a fee line or a movement of the item at the
-- institution from the stocktake on, and every calendar month after them up to the drop's last month (a
-- shortfall persists through months without activity). Amount: shortfall × the month's lowest billed unit
-- price (0 if none billed that month).
-- Parameter list_types: the 目录类别 (kb_hilist.list_type, '' = not in kb_hilist) this instance covers; the item's
-- name and list type are those of the latest knowledge-base release (kb_valid_to null).
WITH stocktake AS (
  SELECT fixmedins_code, hilist_code, min(occur_time) AS st_time
  FROM inv_movement WHERE mvmt_type = 'stocktake' GROUP BY fixmedins_code, hilist_code
),
items AS (
  SELECT i.fixmedins_code, i.hilist_code, st.st_time,
         coalesce(k.hilist_name, i.hilist_code) AS item_name
  FROM (SELECT DISTINCT fixmedins_code, hilist_code FROM inv_movement) i
  LEFT JOIN stocktake st ON st.fixmedins_code = i.fixmedins_code AND st.hilist_code = i.hilist_code
  LEFT JOIN kb_hilist k ON k.hilist_code = i.hilist_code AND k.kb_valid_to IS NULL
  WHERE coalesce(k.list_type, '') IN {{ params.list_types }}
),
moves AS (
  SELECT m.fixmedins_code, m.hilist_code, {{ month('m.occur_time') }} AS period,
         sum(CASE WHEN m.mvmt_type = 'stocktake' AND m.occur_time = i.st_time THEN m.cnt
                  WHEN m.mvmt_type IN ('purchase', 'adjust_in') THEN abs(m.cnt)
                  WHEN m.mvmt_type IN ('purchase_return', 'adjust_out') THEN -abs(m.cnt)
                  ELSE 0 END) AS supply_cnt
  FROM inv_movement m
  JOIN items i ON i.fixmedins_code = m.fixmedins_code AND i.hilist_code = m.hilist_code
  WHERE i.st_time IS NULL OR m.occur_time >= i.st_time
  GROUP BY m.fixmedins_code, m.hilist_code, {{ month('m.occur_time') }}
),
billed AS (
  SELECT f.fixmedins_code, f.hilist_code, {{ month('f.fee_ocur_time') }} AS period,
         sum(f.cnt) AS billed_cnt, min(f.pric) AS min_pric
  FROM fee f
  JOIN items i ON i.fixmedins_code = f.fixmedins_code AND i.hilist_code = f.hilist_code
  WHERE i.st_time IS NULL OR f.fee_ocur_time >= i.st_time
  GROUP BY f.fixmedins_code, f.hilist_code, {{ month('f.fee_ocur_time') }}
),
horizon AS (
  -- the last month the drop has data for: a shortfall persists through months without activity
  SELECT max(p) AS last_period FROM (
    SELECT {{ month('max(fee_ocur_time)') }} AS p FROM fee
    UNION ALL
    SELECT {{ month('max(occur_time)') }} AS p FROM inv_movement) x
),
spans AS (
  SELECT a.fixmedins_code, a.hilist_code,
         to_date(concat(min(a.period), '-01')) AS first_month, to_date(concat(max(h.last_period), '-01')) AS last_month
  FROM (SELECT fixmedins_code, hilist_code, period FROM moves
        UNION ALL
        SELECT fixmedins_code, hilist_code, period FROM billed) a
  CROSS JOIN horizon h
  GROUP BY a.fixmedins_code, a.hilist_code
),
months AS (
  SELECT s.fixmedins_code, s.hilist_code, {{ month('m') }} AS period
  FROM spans s
  LATERAL VIEW explode(sequence(s.first_month, s.last_month, interval 1 month)) e AS m
),
running AS (
  SELECT mo.fixmedins_code, mo.hilist_code, mo.period, i.item_name, i.st_time, b.min_pric,
         sum(coalesce(b.billed_cnt, 0)) OVER (PARTITION BY mo.fixmedins_code, mo.hilist_code ORDER BY mo.period
                                              ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS billed_to_date,
         sum(coalesce(u.supply_cnt, 0)) OVER (PARTITION BY mo.fixmedins_code, mo.hilist_code ORDER BY mo.period
                                              ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS supply_to_date
  FROM months mo
  JOIN items i ON i.fixmedins_code = mo.fixmedins_code AND i.hilist_code = mo.hilist_code
  LEFT JOIN billed b ON b.fixmedins_code = mo.fixmedins_code AND b.hilist_code = mo.hilist_code AND b.period = mo.period
  LEFT JOIN moves u ON u.fixmedins_code = mo.fixmedins_code AND u.hilist_code = mo.hilist_code AND u.period = mo.period
)
SELECT
  r.fixmedins_code, CAST(NULL AS STRING) AS psn_no, CAST(NULL AS STRING) AS mdtrt_id, CAST(NULL AS STRING) AS setl_id,
  CAST(NULL AS STRING) AS feedetl_sn, r.hilist_code,
  CAST(concat(r.period, '-01') AS DATE) AS event_time,
  r.period,
  coalesce(CAST(r.billed_to_date - r.supply_to_date AS DECIMAL(18,4)) * CAST(r.min_pric AS DECIMAL(18,6)), 0) AS amount,
  concat(r.fixmedins_code, '“', r.item_name, '”(', r.hilist_code, ')截至', r.period, '月末累计计费数量',
         {{ qty('r.billed_to_date') }}, '，超过可供数量', {{ qty('r.supply_to_date') }}, '（',
         CASE WHEN r.st_time IS NULL THEN '无盘存记录，期初按0计'
              ELSE concat({{ ymd('r.st_time') }}, '盘存起算') END,
         '，含采购、采购退货及库存变更，不含药房销售记录），缺口', {{ qty('r.billed_to_date - r.supply_to_date') }}, '。') AS evidence
FROM running r
WHERE r.billed_to_date > r.supply_to_date
