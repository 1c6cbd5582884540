-- visit_diag: every diagnosis of a visit — its diag rows plus mdtrt.dscg_maindiag_code — as one normalised code
-- (dots dropped, trimmed, upper case: contract §4 "codes compared without dots, case-insensitive"), once per
-- visit and code. Read by the families that match ICD-10 prefixes.
SELECT mdtrt_id, upper(replace(trim(diag_code), '.', '')) AS code FROM diag WHERE diag_code IS NOT NULL
UNION
SELECT mdtrt_id, upper(replace(trim(dscg_maindiag_code), '.', '')) AS code FROM visit
WHERE dscg_maindiag_code IS NOT NULL
