-- self_pay_ratio 自费超比例: an inpatient settlement (its visit is inpatient) with fulamt_ownpay_amt /
-- medfee_sumamt > kb_param.self_pay_ratio_max, compared as fulamt_ownpay_amt > medfee_sumamt × ratio (exact
-- decimals); refund settlements (refd_setl_flag = 1) and settlements without a positive total are excluded.
-- Amount: fulamt_ownpay_amt.
SELECT
  s.fixmedins_code, s.psn_no, s.mdtrt_id, s.setl_id, CAST(NULL AS STRING) AS feedetl_sn,
  CAST(NULL AS STRING) AS hilist_code,
  s.setl_time AS event_time,
  {{ month('s.setl_time') }} AS period,
  s.fulamt_ownpay_amt AS amount,
  concat('住院结算', s.setl_id, '（就诊', s.mdtrt_id, '，', {{ ymd('s.setl_time') }}, '）全自费金额',
         {{ num('s.fulamt_ownpay_amt') }}, '元，医疗费总额', {{ num('s.medfee_sumamt') }}, '元，超过自费比例上限',
         {{ qty(param('self_pay_ratio_max')) }}, '（即', {{ num('s.medfee_sumamt * ' ~ param('self_pay_ratio_max')) }}, '元）。') AS evidence
FROM setl s
JOIN visit v ON v.mdtrt_id = s.mdtrt_id
WHERE v.is_inpatient
  AND coalesce(s.refd_setl_flag, '') <> '1'
  AND s.medfee_sumamt > 0
  AND s.fulamt_ownpay_amt > s.medfee_sumamt * {{ param('self_pay_ratio_max') }}
