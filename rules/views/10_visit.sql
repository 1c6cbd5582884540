-- visit: every 就诊 with its inpatient flag and calendar dates (contract §2, §4 "Days").
SELECT
  m.*,
  (substr(m.med_type, 1, 1) = '2' OR m.med_type = '52') AS is_inpatient,
  to_date(m.begntime) AS adm_date,
  to_date(m.endtime) AS dscg_date
FROM mdtrt m
