-- fee_dup_groups: a hash of (mdtrt_id, hilist_code, fee_ocur_time, cnt, pric) for every group of more than one
-- fund line sharing those five values (duplicate_line's candidates, found by one aggregation for all of its
-- instances). A hash collision only adds a candidate: the family ranks lines by the columns themselves.
SELECT hash(mdtrt_id, hilist_code, fee_ocur_time, cnt, pric) AS h
FROM fee
WHERE is_fund
GROUP BY hash(mdtrt_id, hilist_code, fee_ocur_time, cnt, pric)
HAVING count(*) > 1
