-- hosp_level_restricted 限医院等级: the institution's level is below kb_hilist.hosp_lv_min (1 三级, 2 二级及以上,
-- 3 一级及以上); hosp_lv 01–04 三级, 05–07 二级, 08–10 一级, 11 无等级 (view `institution`); fund lines only.
-- Parameter list_types: the 目录类别 (kb_hilist.list_type, '' = none) this instance covers.
SELECT
  f.fixmedins_code, f.psn_no, f.mdtrt_id, f.setl_id, f.feedetl_sn, f.hilist_code,
  f.fee_ocur_time AS event_time,
  {{ month('f.fee_ocur_time') }} AS period,
  f.det_item_fee_sumamt AS amount,
  concat('“', coalesce(k.hilist_name, f.hilist_name, f.hilist_code), '”(', f.hilist_code, ')限',
         CASE k.hosp_lv_min WHEN '1' THEN '三级' WHEN '2' THEN '二级及以上' ELSE '一级及以上' END,
         '医疗机构使用，', f.fixmedins_code, '为', i.hosp_class, '（医院等级', i.hosp_lv, '），', {{ ymd('f.fee_date') }},
         '计费', {{ num('f.det_item_fee_sumamt') }}, '元由基金支付。') AS evidence
FROM fee f
JOIN kb_hilist k ON k.hilist_code = f.hilist_code AND {{ in_force('k', 'f.fee_date') }}
JOIN institution i ON i.fixmedins_code = f.fixmedins_code
WHERE f.is_fund
  AND k.hosp_lv_min IN ('1', '2', '3')
  AND i.hosp_rank > CAST(k.hosp_lv_min AS INT)
  AND coalesce(k.list_type, '') IN {{ params.list_types }}
