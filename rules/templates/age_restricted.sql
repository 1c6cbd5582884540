-- age_restricted 限定年龄: the person's age at the line's date (completed years, via age_at) is outside
-- [kb_hilist.age_min, kb_hilist.age_max] (both inclusive, either may be missing); fund lines only.
-- Thresholds: kb_hilist.age_min / age_max. Parameter list_types: the 目录类别 (kb_hilist.list_type,
-- '' = none) this instance covers.
WITH aged AS (
  SELECT f.*, k.age_min, k.age_max, coalesce(k.hilist_name, f.hilist_name, f.hilist_code) AS item_name,
         {{ age_at('p.brdy', 'f.fee_date') }} AS age
  FROM fee f
  JOIN kb_hilist k ON k.hilist_code = f.hilist_code AND {{ in_force('k', 'f.fee_date') }}
  JOIN psn p ON p.psn_no = f.psn_no
  WHERE f.is_fund
    AND p.brdy IS NOT NULL
    AND (k.age_min IS NOT NULL OR k.age_max IS NOT NULL)
    AND coalesce(k.list_type, '') IN {{ params.list_types }}
)
SELECT
  a.fixmedins_code, a.psn_no, a.mdtrt_id, a.setl_id, a.feedetl_sn, a.hilist_code,
  a.fee_ocur_time AS event_time,
  {{ month('a.fee_ocur_time') }} AS period,
  a.det_item_fee_sumamt AS amount,
  concat('“', a.item_name, '”(', a.hilist_code, ')限',
         CASE WHEN a.age_min IS NOT NULL AND a.age_max IS NOT NULL
                THEN concat({{ qty('a.age_min') }}, '至', {{ qty('a.age_max') }}, '周岁')
              WHEN a.age_min IS NOT NULL THEN concat({{ qty('a.age_min') }}, '周岁及以上')
              ELSE concat({{ qty('a.age_max') }}, '周岁及以下') END,
         '使用，参保人', a.psn_no, '于', {{ ymd('a.fee_date') }}, '计费时为', CAST(a.age AS STRING), '周岁，',
         {{ num('a.det_item_fee_sumamt') }}, '元由基金支付。') AS evidence
FROM aged a
WHERE a.age < a.age_min OR a.age > a.age_max
