-- nursing_level_overlap 护理等级重叠 (extension, catalogue R25): in one visit on one calendar day, fund lines of
-- more than kb_param.nursing_levels_per_day_max distinct nursing items (parameter nursing_types: the line's
-- med_chrgitm_type, else kb_hilist's, e.g. 07 护理费). The items are ranked by their highest unit price that day
-- (then code); the lines of the items ranked after the allowed number are suspects.
WITH nursing AS (
  SELECT f.*, coalesce(k.hilist_name, f.hilist_name, f.hilist_code) AS item_name
  FROM fee f
  LEFT JOIN kb_hilist k ON k.hilist_code = f.hilist_code AND {{ in_force('k', 'f.fee_date') }}
  WHERE f.is_fund AND coalesce(f.med_chrgitm_type, k.med_chrgitm_type, '') IN {{ params.nursing_types }}
),
items AS (
  SELECT mdtrt_id, fee_date, hilist_code, max(pric) AS top_pric,
         dense_rank() OVER (PARTITION BY mdtrt_id, fee_date ORDER BY max(pric) DESC, hilist_code) AS level_no,
         count(*) OVER (PARTITION BY mdtrt_id, fee_date) AS day_levels,
         first_value(hilist_code) OVER (PARTITION BY mdtrt_id, fee_date ORDER BY max(pric) DESC, hilist_code) AS kept_code
  FROM nursing
  GROUP BY mdtrt_id, fee_date, hilist_code
)
SELECT
  n.fixmedins_code, n.psn_no, n.mdtrt_id, n.setl_id, n.feedetl_sn, n.hilist_code,
  n.fee_ocur_time AS event_time,
  {{ month('n.fee_ocur_time') }} AS period,
  n.det_item_fee_sumamt AS amount,
  concat('就诊', n.mdtrt_id, '于', {{ ymd('n.fee_date') }}, '同日计费', CAST(i.day_levels AS STRING), '个护理等级项目（保留最高等级',
         i.kept_code, '），本条“', n.item_name, '”(', n.hilist_code, ')重叠收费，金额', {{ num('n.det_item_fee_sumamt') }},
         '元由基金支付。') AS evidence
FROM nursing n
JOIN items i ON i.mdtrt_id = n.mdtrt_id AND i.fee_date = n.fee_date AND i.hilist_code = n.hilist_code
WHERE i.level_no > {{ param('nursing_levels_per_day_max') }}
