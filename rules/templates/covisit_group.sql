-- covisit_group 结伴就医 (issue #16): persons who visit the same institution on the same days far more often than
-- chance, the definition `fundguard analyze` uses (pipelines/analytics/covisit.py, docs/decisions.md). Per
-- institution and year, with D days on which it had visits and a person's n visit days there, two persons meet
-- by chance about n_a·n_b / D days. A pair is flagged when it met on at least covisit_min_days days and at least
-- covisit_min_ratio times that expectation (co_days·D ≥ ratio·n_a·n_b, exact). Only persons with at least
-- covisit_min_days visit days there can form a pair. Suspects: every visit of a flagged pair's member on a day
-- a flagged partner visited the same institution too; the evidence names the partners of that day and the
-- strongest pair's figures. Thresholds: kb_param covisit_min_days, covisit_min_ratio.
WITH pv AS (
  SELECT DISTINCT fixmedins_code, year(adm_date) AS yr, psn_no, adm_date AS day
  FROM visit
  WHERE adm_date IS NOT NULL AND psn_no IS NOT NULL
),
inst_days AS (
  SELECT fixmedins_code, yr, count(*) AS days FROM (SELECT DISTINCT fixmedins_code, yr, day FROM pv) d
  GROUP BY fixmedins_code, yr
),
psn_days AS (
  SELECT fixmedins_code, yr, psn_no, count(*) AS n FROM pv
  GROUP BY fixmedins_code, yr, psn_no
  HAVING count(*) >= {{ param('covisit_min_days') }}
),
cand AS (
  SELECT pv.* FROM pv
  JOIN psn_days c ON c.fixmedins_code = pv.fixmedins_code AND c.yr = pv.yr AND c.psn_no = pv.psn_no
),
pairs AS (
  SELECT a.fixmedins_code, a.yr, a.psn_no AS psn_a, b.psn_no AS psn_b, count(*) AS co_days
  FROM cand a
  JOIN cand b ON b.fixmedins_code = a.fixmedins_code AND b.yr = a.yr AND b.day = a.day AND a.psn_no < b.psn_no
  GROUP BY a.fixmedins_code, a.yr, a.psn_no, b.psn_no
  HAVING count(*) >= {{ param('covisit_min_days') }}
),
flagged AS (
  SELECT p.*, ca.n AS n_a, cb.n AS n_b, d.days
  FROM pairs p
  JOIN inst_days d ON d.fixmedins_code = p.fixmedins_code AND d.yr = p.yr
  JOIN psn_days ca ON ca.fixmedins_code = p.fixmedins_code AND ca.yr = p.yr AND ca.psn_no = p.psn_a
  JOIN psn_days cb ON cb.fixmedins_code = p.fixmedins_code AND cb.yr = p.yr AND cb.psn_no = p.psn_b
  WHERE p.co_days * d.days >= {{ param('covisit_min_ratio') }} * ca.n * cb.n
),
partner AS (
  SELECT fixmedins_code, yr, psn_a AS psn_no, psn_b AS other, co_days, n_a AS n_own, n_b AS n_other, days FROM flagged
  UNION ALL
  SELECT fixmedins_code, yr, psn_b AS psn_no, psn_a AS other, co_days, n_b AS n_own, n_a AS n_other, days FROM flagged
),
partners_of_year AS (
  SELECT fixmedins_code, yr, psn_no, count(*) AS partners FROM partner GROUP BY fixmedins_code, yr, psn_no
),
together AS (
  SELECT v.mdtrt_id, pt.other, pt.co_days, pt.n_own, pt.n_other, pt.days,
         row_number() OVER (PARTITION BY v.mdtrt_id
                            ORDER BY pt.co_days * pt.days / (pt.n_own * pt.n_other) DESC, pt.co_days DESC, pt.other) AS rn,
         array_join(array_sort(collect_list(pt.other) OVER (PARTITION BY v.mdtrt_id)), '、') AS others,
         count(*) OVER (PARTITION BY v.mdtrt_id) AS others_today
  FROM visit v
  JOIN partner pt ON pt.fixmedins_code = v.fixmedins_code AND pt.yr = year(v.adm_date) AND pt.psn_no = v.psn_no
  JOIN pv o ON o.fixmedins_code = v.fixmedins_code AND o.yr = pt.yr AND o.psn_no = pt.other AND o.day = v.adm_date
)
SELECT
  v.fixmedins_code, v.psn_no, v.mdtrt_id, CAST(NULL AS STRING) AS setl_id, CAST(NULL AS STRING) AS feedetl_sn,
  CAST(NULL AS STRING) AS hilist_code,
  v.begntime AS event_time,
  {{ month('v.begntime') }} AS period,
  coalesce(a.fund_amt, 0) AS amount,
  concat('参保人', v.psn_no, '于', {{ ymd('v.adm_date') }}, '在', v.fixmedins_code, '就诊，结伴参保人', t.others, '（',
         CAST(t.others_today AS STRING), '人）同日同院就诊；', CAST(year(v.adm_date) AS STRING), '年其与', t.other,
         '在该院同日就诊', CAST(t.co_days AS STRING), '天，该院全年有就诊', CAST(t.days AS STRING), '天、二人各就诊',
         CAST(t.n_own AS STRING), '天和', CAST(t.n_other AS STRING), '天，随机同日预期',
         {{ qty('round(t.n_own * t.n_other / t.days, 2)') }}, '天，实际为预期的',
         {{ qty('round(t.co_days * t.days / (t.n_own * t.n_other), 1)') }}, '倍（阈值：至少',
         CAST(CAST({{ param('covisit_min_days') }} AS INT) AS STRING), '天且至少', {{ qty(param('covisit_min_ratio')) }},
         '倍）；年内结伴', CAST(y.partners AS STRING), '人；基金支付范围明细金额', {{ num('coalesce(a.fund_amt, 0)') }}, '元。') AS evidence
FROM together t
JOIN visit v ON v.mdtrt_id = t.mdtrt_id
JOIN partners_of_year y ON y.fixmedins_code = v.fixmedins_code AND y.yr = year(v.adm_date) AND y.psn_no = v.psn_no
LEFT JOIN visit_fund a ON a.mdtrt_id = v.mdtrt_id
WHERE t.rn = 1
