-- visit_fund: per visit, the amount at stake of a visit-grain finding: the amount charged on the visit's fund
-- lines (Σ det_item_fee_sumamt, fund lines after netting); a visit without any fee line (a drop of visits and
-- settlements only) has its settlements' fund payment (Σ setl.fund_pay_sumamt) instead, not 0. Templates LEFT
-- JOIN it and use 0 when a visit has neither.
WITH lines AS (
  SELECT mdtrt_id, sum(CASE WHEN is_fund THEN det_item_fee_sumamt END) AS fund_amt,
         count_if(is_fund) AS fund_lines
  FROM fee
  GROUP BY mdtrt_id
),
paid AS (
  SELECT s.mdtrt_id, sum(s.fund_pay_sumamt) AS fund_amt
  FROM setl s
  WHERE NOT EXISTS (SELECT 1 FROM lines l WHERE l.mdtrt_id = s.mdtrt_id)
  GROUP BY s.mdtrt_id
)
SELECT mdtrt_id, fund_amt, fund_lines FROM lines WHERE fund_lines > 0
UNION ALL
SELECT mdtrt_id, fund_amt, 0 AS fund_lines FROM paid
