-- visit_fund: per visit, the amount charged on fund lines (contract §4: visit-grain amount = Σ
-- det_item_fee_sumamt of the visit's fund lines; templates LEFT JOIN it and use 0 when a visit has none).
SELECT mdtrt_id, sum(det_item_fee_sumamt) AS fund_amt, count(*) AS fund_lines
FROM fee
WHERE is_fund
GROUP BY mdtrt_id
