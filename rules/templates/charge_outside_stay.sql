-- charge_outside_stay 住院期外收费: a fund line of an inpatient visit dated before the admission date or after the
-- discharge date, unless dscg_tkdrug_flag = 1 (出院带药). Without a discharge time only "before" is checked.
-- Parameter chrgitm_types: the line's med_chrgitm_type ('' = none) this instance covers.
SELECT
  f.fixmedins_code, f.psn_no, f.mdtrt_id, f.setl_id, f.feedetl_sn, f.hilist_code,
  f.fee_ocur_time AS event_time,
  {{ month('f.fee_ocur_time') }} AS period,
  f.det_item_fee_sumamt AS amount,
  concat('住院', f.mdtrt_id, '（', {{ ymd('v.adm_date') }}, '入院，', coalesce(concat({{ ymd('v.dscg_date') }}, '出院'), '未出院'),
         '）的明细', f.feedetl_sn, '“', coalesce(f.hilist_name, f.hilist_code), '”(', f.hilist_code, ')发生于',
         {{ ymd('f.fee_date') }}, CASE WHEN f.fee_date < v.adm_date THEN '，早于入院日期' ELSE '，晚于出院日期' END,
         '且非出院带药；金额', {{ num('f.det_item_fee_sumamt') }}, '元由基金支付。') AS evidence
FROM fee f
JOIN visit v ON v.mdtrt_id = f.mdtrt_id
WHERE f.is_fund
  AND v.is_inpatient
  AND coalesce(f.dscg_tkdrug_flag, '') <> '1'
  AND (f.fee_date < v.adm_date OR f.fee_date > v.dscg_date)
  AND coalesce(f.med_chrgitm_type, '') IN {{ params.chrgitm_types }}
