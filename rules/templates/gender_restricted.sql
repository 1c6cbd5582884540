-- gender_restricted 限定性别: kb_hilist.gend_lmt set and psn.gend differs; fund lines only.
-- Parameter list_types: the 目录类别 (kb_hilist.list_type) this instance covers.
SELECT
  f.fixmedins_code, f.psn_no, f.mdtrt_id, f.setl_id, f.feedetl_sn, f.hilist_code,
  f.fee_ocur_time AS event_time,
  {{ month('f.fee_ocur_time') }} AS period,
  f.det_item_fee_sumamt AS amount,
  concat('“', coalesce(k.hilist_name, f.hilist_name, f.hilist_code), '”(', f.hilist_code, ')限',
         CASE k.gend_lmt WHEN '1' THEN '男性' ELSE '女性' END, '使用，参保人', f.psn_no, '性别为',
         CASE p.gend WHEN '1' THEN '男' WHEN '2' THEN '女' ELSE p.gend END, '，', {{ ymd('f.fee_date') }},
         '计费', {{ num('f.det_item_fee_sumamt') }}, '元由基金支付。') AS evidence
FROM fee f
JOIN kb_hilist k ON k.hilist_code = f.hilist_code AND {{ in_force('k', 'f.fee_date') }}
JOIN psn p ON p.psn_no = f.psn_no
WHERE f.is_fund
  AND k.gend_lmt IS NOT NULL
  AND p.gend IS NOT NULL
  AND p.gend <> k.gend_lmt
  AND coalesce(k.list_type, '') IN {{ params.list_types }}
