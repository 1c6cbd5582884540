-- institution: fixmedins with its level class (contract §4 hosp_level_restricted): hosp_lv 01–04 三级 (rank 1),
-- 05–07 二级 (rank 2), 08–10 一级 (rank 3), 11 无等级 (rank 4); unknown codes have no rank (not evaluated).
-- kb_hilist.hosp_lv_min 1/2/3 is met when hosp_rank <= hosp_lv_min.
SELECT
  i.*,
  CASE WHEN i.hosp_lv IN ('01', '02', '03', '04') THEN 1
       WHEN i.hosp_lv IN ('05', '06', '07') THEN 2
       WHEN i.hosp_lv IN ('08', '09', '10') THEN 3
       WHEN i.hosp_lv = '11' THEN 4 END AS hosp_rank,
  CASE WHEN i.hosp_lv IN ('01', '02', '03', '04') THEN '三级'
       WHEN i.hosp_lv IN ('05', '06', '07') THEN '二级'
       WHEN i.hosp_lv IN ('08', '09', '10') THEN '一级'
       WHEN i.hosp_lv = '11' THEN '无等级' END AS hosp_class
FROM fixmedins i
