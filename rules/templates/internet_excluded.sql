-- internet_excluded 超互联网医院药品支付范围: a fund line of a drug outside the payment scope of internet-hospital
-- care (kb_hilist.internet_excluded = '1') on a visit of internet-hospital care (mdtrt.internet_flag = '1'); a
-- visit without the flag is not evaluated. The kb row in force on the line's date is used.
-- Parameter list_types: the 目录类别 (kb_hilist.list_type) this instance covers.
SELECT
  f.fixmedins_code, f.psn_no, f.mdtrt_id, f.setl_id, f.feedetl_sn, f.hilist_code,
  f.fee_ocur_time AS event_time,
  {{ month('f.fee_ocur_time') }} AS period,
  f.det_item_fee_sumamt AS amount,
  concat('“', coalesce(k.hilist_name, f.hilist_name, f.hilist_code), '”(', f.hilist_code,
         ')不在互联网医院药品支付范围内，参保人', f.psn_no, '于', {{ ymd('f.fee_date') }}, '经互联网医院诊疗（就诊', f.mdtrt_id,
         '）由基金支付', {{ num('f.det_item_fee_sumamt') }}, '元（知识库', coalesce(k.kb_release, '本地'),
         CASE WHEN k.kb_source IS NULL THEN '' ELSE concat('，', k.kb_source) END, '）。') AS evidence
FROM fee f
JOIN kb_hilist k ON k.hilist_code = f.hilist_code AND {{ in_force('k', 'f.fee_date') }}
JOIN visit v ON v.mdtrt_id = f.mdtrt_id
WHERE f.is_fund
  AND k.internet_excluded = '1'
  AND v.internet_flag = '1'
  AND coalesce(k.list_type, '') IN {{ params.list_types }}
