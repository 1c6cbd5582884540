-- class_c_fund_paid 丙类项目基金支付 (extension, catalogue R12): a line whose 收费项目等级 is 丙类 (03: wholly
-- self-paid) on the line or in kb_hilist, yet with inscp_scp_amt > 0 (the fund's scope amount). No threshold.
-- Parameter list_types: the 目录类别 (kb_hilist.list_type, '' = not in kb_hilist) this instance covers.
SELECT
  f.fixmedins_code, f.psn_no, f.mdtrt_id, f.setl_id, f.feedetl_sn, f.hilist_code,
  f.fee_ocur_time AS event_time,
  {{ month('f.fee_ocur_time') }} AS period,
  f.det_item_fee_sumamt AS amount,
  concat('“', coalesce(k.hilist_name, f.hilist_name, f.hilist_code), '”(', f.hilist_code, ')为丙类（',
         CASE WHEN f.chrgitm_lv = '03' THEN '明细' ELSE '目录' END, '收费项目等级03，应全额自费），',
         {{ ymd('f.fee_date') }}, '的明细', f.feedetl_sn, '却计入符合范围金额', {{ num('f.inscp_scp_amt') }}, '元。') AS evidence
FROM fee f
LEFT JOIN kb_hilist k ON k.hilist_code = f.hilist_code AND {{ in_force('k', 'f.fee_date') }}
WHERE f.inscp_scp_amt > 0
  AND (f.chrgitm_lv = '03' OR k.chrgitm_lv = '03')
  AND coalesce(k.list_type, '') IN {{ params.list_types }}
