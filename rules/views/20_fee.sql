-- fee: netted fee lines (silver/fee_list_net) with their calendar day and the fund-line flag.
-- Fund line (contract §4): inscp_scp_amt > 0; where it is null, chrgitm_lv is not 03.
SELECT
  f.*,
  to_date(f.fee_ocur_time) AS fee_date,
  CASE WHEN f.inscp_scp_amt IS NOT NULL THEN f.inscp_scp_amt > 0
       ELSE coalesce(f.chrgitm_lv, '') <> '03' END AS is_fund
FROM fee_list f
