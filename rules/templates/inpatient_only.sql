-- inpatient_only 限住院使用: kb_hilist.ipt_only = 1 billed on an outpatient visit (med_type not inpatient,
-- pharmacy purchases 41 included); fund lines only. Parameter list_types: the 目录类别 (kb_hilist.list_type,
-- '' = none) this instance covers.
SELECT
  f.fixmedins_code, f.psn_no, f.mdtrt_id, f.setl_id, f.feedetl_sn, f.hilist_code,
  f.fee_ocur_time AS event_time,
  {{ month('f.fee_ocur_time') }} AS period,
  f.det_item_fee_sumamt AS amount,
  concat('“', coalesce(k.hilist_name, f.hilist_name, f.hilist_code), '”(', f.hilist_code, ')限住院使用，参保人',
         f.psn_no, '于', {{ ymd('f.fee_date') }}, '在门诊就诊', f.mdtrt_id, '（医疗类别', coalesce(v.med_type, ''),
         '）计费', {{ num('f.det_item_fee_sumamt') }}, '元由基金支付。') AS evidence
FROM fee f
JOIN kb_hilist k ON k.hilist_code = f.hilist_code AND {{ in_force('k', 'f.fee_date') }}
JOIN visit v ON v.mdtrt_id = f.mdtrt_id
WHERE f.is_fund
  AND k.ipt_only = '1'
  AND NOT v.is_inpatient
  AND coalesce(k.list_type, '') IN {{ params.list_types }}
