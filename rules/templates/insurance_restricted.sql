-- insurance_restricted 限工伤/生育保险支付: kb_hilist.insutype_only set (险种类型 codes, `|`-separated: 410 工伤,
-- 510 生育) and the line's insurance type — the settlement's setl.insutype, else the person's psn.insutype — is
-- not one of them; fund lines only; a line whose insurance type is unknown is not evaluated.
-- Parameter list_types: the 目录类别 (kb_hilist.list_type) this instance covers.
SELECT
  f.fixmedins_code, f.psn_no, f.mdtrt_id, f.setl_id, f.feedetl_sn, f.hilist_code,
  f.fee_ocur_time AS event_time,
  {{ month('f.fee_ocur_time') }} AS period,
  f.det_item_fee_sumamt AS amount,
  concat('“', coalesce(k.hilist_name, f.hilist_name, f.hilist_code), '”(', f.hilist_code, ')限',
         CASE k.insutype_only WHEN '410' THEN '工伤保险' WHEN '510' THEN '生育保险'
              ELSE concat('险种', k.insutype_only) END,
         '支付，参保人', f.psn_no, '以险种', coalesce(s.insutype, p.insutype), '于', {{ ymd('f.fee_date') }},
         '由基金支付', {{ num('f.det_item_fee_sumamt') }}, '元（知识库', coalesce(k.kb_release, '本地'),
         CASE WHEN k.kb_source IS NULL THEN '' ELSE concat('，', k.kb_source) END, '）。') AS evidence
FROM fee f
JOIN kb_hilist k ON k.hilist_code = f.hilist_code
LEFT JOIN setl s ON s.setl_id = f.setl_id
LEFT JOIN psn p ON p.psn_no = f.psn_no
WHERE f.is_fund
  AND k.insutype_only IS NOT NULL
  AND coalesce(s.insutype, p.insutype) IS NOT NULL
  AND concat('|', k.insutype_only, '|') NOT LIKE concat('%|', coalesce(s.insutype, p.insutype), '|%')
  AND coalesce(k.list_type, '') IN {{ params.list_types }}
