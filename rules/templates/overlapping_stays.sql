-- overlapping_stays 住院时间重叠: two inpatient stays of one person (any institutions) where the later-admitted
-- one's admission date is before the earlier one's discharge date; the later-admitted stay is the suspect.
-- "Later" is by begntime, ties broken by mdtrt_id. An earlier stay without a discharge time is not evaluated.
WITH stays AS (
  SELECT * FROM visit WHERE is_inpatient AND adm_date IS NOT NULL
),
pairs AS (
  SELECT l.*, e.mdtrt_id AS e_id, e.fixmedins_code AS e_inst, e.adm_date AS e_adm, e.dscg_date AS e_dscg,
         row_number() OVER (PARTITION BY l.mdtrt_id ORDER BY e.begntime, e.mdtrt_id) AS rn
  FROM stays l
  JOIN stays e ON e.psn_no = l.psn_no AND e.mdtrt_id <> l.mdtrt_id
              AND (e.begntime < l.begntime OR (e.begntime = l.begntime AND e.mdtrt_id < l.mdtrt_id))
  WHERE l.adm_date < e.dscg_date
)
SELECT
  p.fixmedins_code, p.psn_no, p.mdtrt_id, CAST(NULL AS STRING) AS setl_id, CAST(NULL AS STRING) AS feedetl_sn,
  CAST(NULL AS STRING) AS hilist_code,
  p.begntime AS event_time,
  {{ month('p.begntime') }} AS period,
  coalesce(a.fund_amt, 0) AS amount,
  concat('参保人', p.psn_no, '于', {{ ymd('p.adm_date') }}, '在', p.fixmedins_code, '入院（', p.mdtrt_id, '），此前在',
         p.e_inst, '的住院（', p.e_id, '，', {{ ymd('p.e_adm') }}, '入院，', {{ ymd('p.e_dscg') }},
         '出院）尚未结束；本次基金支付范围明细金额', {{ num('coalesce(a.fund_amt, 0)') }}, '元。') AS evidence
FROM pairs p
LEFT JOIN visit_fund a ON a.mdtrt_id = p.mdtrt_id
WHERE p.rn = 1
