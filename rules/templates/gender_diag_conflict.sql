-- gender_diag_conflict 性别与诊断不符 (extension, catalogue R69, 冒名就医线索): a visit with a diagnosis (diag rows
-- and mdtrt.dscg_maindiag_code; dots dropped, case-insensitive) starting with a prefix of
-- kb_param.diag_female_only_prefixes while the person is male, or of kb_param.diag_male_only_prefixes while the
-- person is female (`|`-separated text). A missing key: that side is not evaluated.
WITH prefixes AS (
  SELECT x.gend, upper(replace(trim(x.prefix), '.', '')) AS prefix
  FROM (SELECT '1' AS gend, explode(split({{ param_text('diag_female_only_prefixes') }}, '[|]')) AS prefix
        UNION ALL
        SELECT '2' AS gend, explode(split({{ param_text('diag_male_only_prefixes') }}, '[|]')) AS prefix) x
  WHERE x.prefix IS NOT NULL AND trim(x.prefix) <> ''
),
hits AS (
  SELECT v.*, p.gend, d.code,
         row_number() OVER (PARTITION BY v.mdtrt_id ORDER BY d.code) AS rn
  FROM visit v
  JOIN psn p ON p.psn_no = v.psn_no
  JOIN visit_diag d ON d.mdtrt_id = v.mdtrt_id
  -- the first letter is an equi-join key, so each diagnosis meets only the prefixes of its chapter letter
  JOIN prefixes x ON x.gend = p.gend AND substr(d.code, 1, 1) = substr(x.prefix, 1, 1)
                 AND substr(d.code, 1, length(x.prefix)) = x.prefix
)
SELECT
  h.fixmedins_code, h.psn_no, h.mdtrt_id, CAST(NULL AS STRING) AS setl_id, CAST(NULL AS STRING) AS feedetl_sn,
  CAST(NULL AS STRING) AS hilist_code,
  h.begntime AS event_time,
  {{ month('h.begntime') }} AS period,
  coalesce(a.fund_amt, 0) AS amount,
  concat('参保人', h.psn_no, '性别为', CASE h.gend WHEN '1' THEN '男' ELSE '女' END, '，', {{ ymd('h.adm_date') }}, '在',
         h.fixmedins_code, '就诊（', h.mdtrt_id, '）的诊断', h.code, '仅见于', CASE h.gend WHEN '1' THEN '女性' ELSE '男性' END,
         '，疑似冒名就医或诊断不实；基金支付范围明细金额', {{ num('coalesce(a.fund_amt, 0)') }}, '元。') AS evidence
FROM hits h
LEFT JOIN visit_fund a ON a.mdtrt_id = h.mdtrt_id
WHERE h.rn = 1
