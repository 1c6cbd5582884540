-- herbal_not_paid 中药饮片不予支付: a fund line of a herbal piece that the fund never pays
-- (kb_hilist.herbal_never_paid = '1', 单复方均不予支付), or that it does not pay when prescribed alone
-- (kb_hilist.herbal_not_alone = '1', 单方使用不予支付) and it is the only herbal piece of its prescription: the
-- visit-day (same mdtrt_id and calendar day) has no line of another herbal piece (fund-paid or not; a herbal
-- piece: med_chrgitm_type 10 on the line, else kb_hilist.list_type 102). The kb row in force on the line's
-- date is used.
WITH herbal_day AS (
  SELECT f.mdtrt_id, f.fee_date, count(DISTINCT f.hilist_code) AS pieces
  FROM fee f
  LEFT JOIN kb_hilist k ON k.hilist_code = f.hilist_code AND {{ in_force('k', 'f.fee_date') }}
  WHERE coalesce(f.med_chrgitm_type, '') = '10' OR coalesce(k.list_type, '') = '102'
  GROUP BY f.mdtrt_id, f.fee_date
),
flagged AS (
  SELECT f.*, k.kb_release, k.kb_source, coalesce(k.hilist_name, f.hilist_name, f.hilist_code) AS item_name,
         CASE WHEN k.herbal_never_paid = '1' THEN 'never' ELSE 'alone' END AS why
  FROM fee f
  JOIN kb_hilist k ON k.hilist_code = f.hilist_code AND {{ in_force('k', 'f.fee_date') }}
  LEFT JOIN herbal_day h ON h.mdtrt_id = f.mdtrt_id AND h.fee_date = f.fee_date
  WHERE f.is_fund
    AND (k.herbal_never_paid = '1' OR (k.herbal_not_alone = '1' AND coalesce(h.pieces, 1) <= 1))
)
SELECT
  g.fixmedins_code, g.psn_no, g.mdtrt_id, g.setl_id, g.feedetl_sn, g.hilist_code,
  g.fee_ocur_time AS event_time,
  {{ month('g.fee_ocur_time') }} AS period,
  g.det_item_fee_sumamt AS amount,
  concat('中药饮片“', g.item_name, '”(', g.hilist_code, ')',
         CASE g.why WHEN 'never' THEN '单复方均不予支付' ELSE concat('单方使用不予支付，就诊', g.mdtrt_id, '于',
              {{ ymd('g.fee_date') }}, '仅开此一味饮片') END,
         '，却由基金支付', {{ num('g.det_item_fee_sumamt') }}, '元（知识库', coalesce(g.kb_release, '本地'),
         CASE WHEN g.kb_source IS NULL THEN '' ELSE concat('，', g.kb_source) END, '）。') AS evidence
FROM flagged g
