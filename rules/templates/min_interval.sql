-- min_interval 短于最短间隔: the same item for the same person again fewer than kb_hilist.min_interval_days
-- calendar days (later date − earlier date) after an earlier fund line, at any institution; the later line is
-- the suspect. Lines are ordered by fee_ocur_time, then mdtrt_id, then feedetl_sn (sn_key: numeric order
-- for digit strings); comparing with the immediately preceding line is enough (it is the nearest earlier one).
-- Parameter list_types: the 目录类别 (kb_hilist.list_type, '' = none) this instance covers.
WITH lines AS (
  SELECT f.*, k.min_interval_days, k.list_type,
         coalesce(k.hilist_name, f.hilist_name, f.hilist_code) AS item_name,
         lag(f.fee_date) OVER (PARTITION BY f.psn_no, f.hilist_code
                               ORDER BY f.fee_ocur_time, f.mdtrt_id, {{ sn_key('f.feedetl_sn') }}) AS prev_date,
         lag(f.fixmedins_code) OVER (PARTITION BY f.psn_no, f.hilist_code
                                     ORDER BY f.fee_ocur_time, f.mdtrt_id, {{ sn_key('f.feedetl_sn') }}) AS prev_inst,
         lag(f.mdtrt_id) OVER (PARTITION BY f.psn_no, f.hilist_code
                               ORDER BY f.fee_ocur_time, f.mdtrt_id, {{ sn_key('f.feedetl_sn') }}) AS prev_mdtrt_id
  FROM fee f
  JOIN kb_hilist k ON k.hilist_code = f.hilist_code AND {{ in_force('k', 'f.fee_date') }}
  WHERE f.is_fund AND k.min_interval_days IS NOT NULL
)
SELECT
  l.fixmedins_code, l.psn_no, l.mdtrt_id, l.setl_id, l.feedetl_sn, l.hilist_code,
  l.fee_ocur_time AS event_time,
  {{ month('l.fee_ocur_time') }} AS period,
  l.det_item_fee_sumamt AS amount,
  concat('参保人', l.psn_no, '于', {{ ymd('l.fee_date') }}, '在', l.fixmedins_code, '再次使用“', l.item_name, '”(',
         l.hilist_code, ')，距上次（', {{ ymd('l.prev_date') }}, '，', l.prev_inst, '就诊', l.prev_mdtrt_id, '）仅',
         CAST(datediff(l.fee_date, l.prev_date) AS STRING), '天，短于最短间隔', CAST(l.min_interval_days AS STRING),
         '天；金额', {{ num('l.det_item_fee_sumamt') }}, '元由基金支付。') AS evidence
FROM lines l
WHERE l.prev_date IS NOT NULL
  AND datediff(l.fee_date, l.prev_date) < l.min_interval_days
  AND coalesce(l.list_type, '') IN {{ params.list_types }}
