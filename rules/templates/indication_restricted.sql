-- indication_restricted 限定适应症: kb_hilist.lmt_diag set (ICD-10 prefixes, `|`-separated) and no diagnosis
-- of the visit starts with any listed prefix; codes compared without dots, case-insensitive (N18.5 matches
-- N18). The visit's diagnoses: its diag rows plus mdtrt.dscg_maindiag_code. Fund lines only. The prefixes are
-- those of the kb row in force on the line's date.
-- Parameter list_types: the 目录类别 (kb_hilist.list_type, '' = none) this instance covers.
WITH limited AS (
  SELECT f.*, k.lmt_diag, coalesce(k.hilist_name, f.hilist_name, f.hilist_code) AS item_name
  FROM fee f
  JOIN kb_hilist k ON k.hilist_code = f.hilist_code AND {{ in_force('k', 'f.fee_date') }}
  WHERE f.is_fund
    AND trim(coalesce(k.lmt_diag, '')) <> ''
    AND coalesce(k.list_type, '') IN {{ params.list_types }}
),
prefixes AS (
  SELECT DISTINCT x.hilist_code, x.lmt_diag, upper(replace(trim(x.prefix), '.', '')) AS prefix
  FROM (SELECT k.hilist_code, k.lmt_diag, explode(split(k.lmt_diag, '[|]')) AS prefix
        FROM (SELECT DISTINCT hilist_code, lmt_diag FROM limited) k) x
  WHERE trim(x.prefix) <> ''
),
matched AS (
  SELECT DISTINCT l.mdtrt_id, l.hilist_code, l.lmt_diag
  FROM (SELECT DISTINCT mdtrt_id, hilist_code, lmt_diag FROM limited) l
  JOIN visit_diag d ON d.mdtrt_id = l.mdtrt_id
  JOIN prefixes p ON p.hilist_code = l.hilist_code AND p.lmt_diag = l.lmt_diag
  WHERE substr(d.code, 1, length(p.prefix)) = p.prefix
),
flagged AS (
  SELECT l.* FROM limited l
  LEFT ANTI JOIN matched m ON m.mdtrt_id = l.mdtrt_id AND m.hilist_code = l.hilist_code AND m.lmt_diag = l.lmt_diag
),
-- the diagnoses cited in the evidence, listed for the flagged visits only
diag_list AS (
  SELECT d.mdtrt_id, array_join(array_sort(collect_set(d.code)), '、') AS codes
  FROM visit_diag d
  LEFT SEMI JOIN flagged f ON f.mdtrt_id = d.mdtrt_id
  GROUP BY d.mdtrt_id
)
SELECT
  l.fixmedins_code, l.psn_no, l.mdtrt_id, l.setl_id, l.feedetl_sn, l.hilist_code,
  l.fee_ocur_time AS event_time,
  {{ month('l.fee_ocur_time') }} AS period,
  l.det_item_fee_sumamt AS amount,
  concat('“', l.item_name, '”(', l.hilist_code, ')限诊断', replace(l.lmt_diag, '|', '/'), '使用，就诊', l.mdtrt_id,
         '的诊断为', coalesce(dl.codes, '（无诊断）'), '，均不符合；', {{ ymd('l.fee_date') }}, '计费',
         {{ num('l.det_item_fee_sumamt') }}, '元由基金支付。') AS evidence
FROM flagged l
LEFT JOIN diag_list dl ON dl.mdtrt_id = l.mdtrt_id
