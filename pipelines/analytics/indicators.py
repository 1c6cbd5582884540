"""Indicators per institution × period (month `YYYY-MM` and year `YYYY`), in DuckDB SQL.

`compute_indicators(con, have, years)` reads the views `mdtrt` and `setl` (required) and, when they are in
`have`, `diag`, `fee` (refund-netted fee lines), `fixmedins` and `suspects` (gold/suspects); every indicator
whose input is missing is null and the row's `absent_inputs` names that input. An optional column read as an
input of its own (`COLUMN_INPUTS`: `mdtrt.atddr_no`, the attending physician) is missing when no visit of the
analysed years has a value; `present_columns` adds the present ones to `have`. Readings:

- A visit's period is the month of its `begntime`; its amounts are the sums of its settlements (refund
  settlements net them). Fee-line shares use each line's own month (`fee_ocur_time`).
- Main diagnosis: the diag row with maindiag_flag 1 (else the visit's first diag code), else
  `mdtrt.dscg_maindiag_code`; the group is its first 3 characters, dots removed.
- Readmission: an inpatient stay followed by another stay of the same person at the same institution whose
  admission date is 0–15 (0–30) days after this stay's discharge date; rate over the stays of the period.
- Weekend or night admission: inpatient admission on Saturday or Sunday, or at 20:00–07:59.
- Expected cost of a visit: the mean cost of the OTHER institutions' visits with the same diagnosis group
  and in/outpatient kind over the data analysed (an institution's own coding does not set its expectation;
  a group no other institution has: the kind's mean). casemix_index = Σ expected / Σ the kind's mean at the
  other institutions (1 = the district's mix); cost_vs_expected = Σ cost / Σ expected (high: costs inflated
  for the diagnoses, 费用消耗指数); coding_intensity = its inverse (high: diagnoses heavier than the care billed,
  upcoding); time_index = Σ length of stay / Σ the other institutions' mean stay of the diagnosis (时间消耗指数);
  admission_index = stays / Σ the other institutions' admission rate of the visit's diagnosis (收治指数).
- A patient is shared when seen at another institution in the same period; a physician (`atddr_no`) is
  shared when attending visits at another institution in the same period (多点执业 or a borrowed code):
  shared_physician_share is over the institution's physicians of the period, shared_physician_visit_share
  over its visits with a physician recorded. Codes are taken as district-wide (医保医师代码): a code that
  is only a local staff number would make chance collisions look shared.
- Co-visits: `covisit` (see `covisit.py`) marks visits of person pairs co-visiting far above chance.
"""
from __future__ import annotations

import pyarrow as pa

from pipelines.analytics.labels import INDICATORS

GRAINS = {"month": "month", "year": "year"}
# Amounts and per-visit expectations are summed as decimals: DuckDB sums doubles in parallel, in an order that
# varies between runs, and the last bits that changes were enough to rank institutions differently when
# `fundguard reproduce` re-ran an analysis. A decimal sum is exact, so every run gets the same figures.
EXACT = "DECIMAL(38,9)"
_WEEKEND_NIGHT = "(dayofweek(begntime) IN (0, 6) OR hour(begntime) >= 20 OR hour(begntime) < 8)"


def _dx_sql(have: set[str]) -> str:
    """Main diagnosis per visit (NULL when unknown)."""
    if "diag" not in have:
        return "SELECT mdtrt_id, CAST(NULL AS VARCHAR) AS dx FROM mdtrt WHERE false"
    return ("SELECT mdtrt_id, arg_min(upper(replace(diag_code, '.', '')), "
            "CASE WHEN maindiag_flag = '1' THEN 0 ELSE 1 END) AS dx FROM diag GROUP BY mdtrt_id")


def _birth_sql(have: set[str], con) -> str:
    """Birth and death date per person (none without `psn`; no death date without its column)."""
    if "psn" not in have:
        return "SELECT psn_no, CAST(NULL AS DATE) AS brdy, CAST(NULL AS DATE) AS die_date FROM mdtrt WHERE false"
    die = "min(CAST(die_date AS DATE))" if "die_date" in _columns(con, "psn") else "CAST(NULL AS DATE)"
    return f"SELECT psn_no, min(CAST(brdy AS DATE)) AS brdy, {die} AS die_date FROM psn GROUP BY psn_no"


def _columns(con, view: str) -> set[str]:
    return {r[0] for r in con.sql(f"DESCRIBE {view}").fetchall()}


def build_visits(con, have: set[str], years: list[str]) -> None:
    """Temp table `an_visit`: one row per visit of the analysed years with its amounts, diagnosis group,
    readmission flags and expected cost (`atddr_no` null when another writer's mdtrt has no such column)."""
    yrs = ", ".join(f"'{y}'" for y in years)
    atddr = "atddr_no" if "atddr_no" in _columns(con, "mdtrt") else "CAST(NULL AS VARCHAR) AS atddr_no"
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE an_visit AS
    WITH s AS (SELECT mdtrt_id, sum(medfee_sumamt) AS medfee, sum(fund_pay_sumamt) AS fund,
                      sum(coalesce(fulamt_ownpay_amt, 0)) AS ownpay FROM setl GROUP BY mdtrt_id),
         d AS ({_dx_sql(have)}),
         b AS ({_birth_sql(have, con)}),
         m AS (
           SELECT mdtrt_id, psn_no, fixmedins_code, begntime, endtime, {atddr}, dscg_maindiag_code,
                  (substr(med_type, 1, 1) = '2' OR med_type = '52') AS inpatient, ipt_days,
                  strftime(begntime, '%Y-%m') AS month, strftime(begntime, '%Y') AS year
           FROM mdtrt WHERE strftime(begntime, '%Y') IN ({yrs})),
         v AS (
           SELECT m.*, s.medfee, s.fund, s.ownpay,
                  floor(date_diff('day', b.brdy, begntime::DATE) / 365.25) AS age,
                  CASE WHEN b.psn_no IS NOT NULL THEN coalesce(begntime::DATE > b.die_date, false) END AS after_death,
                  date_diff('day', lag(begntime::DATE) OVER (PARTITION BY psn_no, fixmedins_code
                            ORDER BY begntime, mdtrt_id), begntime::DATE) AS revisit_gap,
                  left(coalesce(d.dx, upper(replace(m.dscg_maindiag_code, '.', ''))), 3) AS dx3,
                  CASE WHEN inpatient THEN coalesce(ipt_days, greatest(
                       date_diff('day', begntime::DATE, coalesce(endtime, begntime)::DATE), 1)) END AS los,
                  CASE WHEN inpatient THEN date_diff('day', coalesce(endtime, begntime)::DATE, lead(begntime::DATE)
                       OVER (PARTITION BY psn_no, fixmedins_code, inpatient ORDER BY begntime)) END AS readmit_gap
           FROM m LEFT JOIN s USING (mdtrt_id) LEFT JOIN d USING (mdtrt_id) LEFT JOIN b USING (psn_no))
    SELECT * EXCLUDE (s_all, n_all, s_own, n_own, k_all, kn_all, k_own, kn_own, l_all, ln_all, l_own, ln_own,
                      i_all, in_all, i_own, in_own),
      CASE WHEN dx3 IS NOT NULL THEN coalesce((s_all - s_own) / nullif(n_all - n_own, 0),
                                               (k_all - k_own) / nullif(kn_all - kn_own, 0))::{EXACT} END AS expected,
      CASE WHEN dx3 IS NOT NULL THEN ((k_all - k_own) / nullif(kn_all - kn_own, 0))::{EXACT} END AS kind_mean,
      CASE WHEN dx3 IS NOT NULL AND inpatient THEN ((l_all - l_own) / nullif(ln_all - ln_own, 0))::{EXACT}
           END AS expected_los,
      CASE WHEN dx3 IS NOT NULL THEN ((i_all - i_own) / nullif(in_all - in_own, 0))::{EXACT} END AS expected_inp
    FROM (SELECT *, sum(medfee) OVER g AS s_all, count(medfee) OVER g AS n_all,
                    sum(medfee) OVER gi AS s_own, count(medfee) OVER gi AS n_own,
                    sum(medfee) OVER k AS k_all, count(medfee) OVER k AS kn_all,
                    sum(medfee) OVER ki AS k_own, count(medfee) OVER ki AS kn_own,
                    sum(los) OVER g AS l_all, count(los) OVER g AS ln_all,
                    sum(los) OVER gi AS l_own, count(los) OVER gi AS ln_own,
                    sum(inpatient::INT) OVER x AS i_all, count(*) OVER x AS in_all,
                    sum(inpatient::INT) OVER xi AS i_own, count(*) OVER xi AS in_own
          FROM v WINDOW g AS (PARTITION BY dx3, inpatient), gi AS (PARTITION BY dx3, inpatient, fixmedins_code),
                        k AS (PARTITION BY dx3 IS NULL, inpatient), ki AS (PARTITION BY dx3 IS NULL, inpatient, fixmedins_code),
                        x AS (PARTITION BY dx3), xi AS (PARTITION BY dx3, fixmedins_code))""")


def _shape_ctes(g: str) -> str:
    """CTEs of the per-person and per-physician shapes: each person's main institution (`home`), visits per
    patient (`pvm`), visits per physician and day (`pdm`)."""
    return f"""home AS (SELECT psn_no, first(fixmedins_code ORDER BY n DESC, fixmedins_code) AS home
                  FROM (SELECT psn_no, fixmedins_code, count(*) AS n FROM an_visit GROUP BY ALL) GROUP BY psn_no),
         pv AS (SELECT fixmedins_code, {g} AS period, psn_no, count(*) AS n FROM an_visit GROUP BY ALL),
         pvm AS (SELECT fixmedins_code, period, avg(CASE WHEN n >= 4 THEN 1.0 ELSE 0.0 END) AS frequent_patient_share,
                        sum(n) FILTER (WHERE n >= 4) / sum(n) AS frequent_patient_visit_share FROM pv GROUP BY ALL),
         pd AS (SELECT fixmedins_code, {g} AS period, atddr_no, begntime::DATE, count(*) AS n FROM an_visit
                WHERE atddr_no IS NOT NULL GROUP BY ALL),
         pdm AS (SELECT fixmedins_code, period, avg(n) AS visits_per_physician_day,
                        quantile_cont(n, 0.9) AS physician_day_p90 FROM pd GROUP BY ALL)"""


def _visit_agg_sql(grain: str) -> str:
    g = GRAINS[grain]
    return f"""
    WITH sp AS (SELECT psn_no, {g} AS period FROM an_visit GROUP BY ALL HAVING count(DISTINCT fixmedins_code) > 1),
         dxc AS (SELECT fixmedins_code, {g} AS period, dx3, count(*) AS n FROM an_visit
                 WHERE dx3 IS NOT NULL GROUP BY ALL),
         dxm AS (SELECT fixmedins_code, period, count(*) AS dx_groups,
                        (-sum((n / tot * log2(n / tot))::{EXACT}))::DOUBLE AS dx_entropy
                        , max(n / tot) AS top_dx_share
                 FROM (SELECT *, sum(n) OVER (PARTITION BY fixmedins_code, period) AS tot FROM dxc) GROUP BY ALL),
         {_shape_ctes(g)}
    SELECT v.fixmedins_code, v.{g} AS period, '{grain}' AS grain,
      count(*) AS visits, count(DISTINCT v.psn_no) AS persons, count_if(inpatient) AS inpatient_stays,
      sum(medfee)::DOUBLE AS medfee_total, sum(fund)::DOUBLE AS fund_total,
      count(*) / count(DISTINCT v.psn_no) AS visits_per_person,
      sum(medfee) / count(*) AS cost_per_visit, sum(fund) / count(*) AS fund_per_visit,
      sum(medfee) FILTER (WHERE inpatient) / nullif(count_if(inpatient), 0) AS cost_per_stay,
      sum(medfee) FILTER (WHERE inpatient) / nullif(sum(los), 0) AS cost_per_bed_day,
      avg(los) AS avg_stay, count_if(inpatient) / count(*) AS inpatient_share,
      sum(fund) / nullif(sum(medfee), 0) AS fund_share, sum(ownpay) / nullif(sum(medfee), 0) AS self_pay_share,
      avg(CASE WHEN readmit_gap BETWEEN 0 AND 15 THEN 1.0 ELSE 0.0 END) FILTER (WHERE inpatient) AS readmit15_rate,
      avg(CASE WHEN readmit_gap BETWEEN 0 AND 30 THEN 1.0 ELSE 0.0 END) FILTER (WHERE inpatient) AS readmit30_rate,
      avg(CASE WHEN {_WEEKEND_NIGHT} THEN 1.0 ELSE 0.0 END) FILTER (WHERE inpatient) AS weekend_night_adm_share,
      count(DISTINCT atddr_no) AS physicians, count(atddr_no) / nullif(count(DISTINCT atddr_no), 0) AS visits_per_physician,
      count(DISTINCT sp.psn_no) / count(DISTINCT v.psn_no) AS shared_patient_share,
      any_value(dxm.dx_groups) AS dx_groups, any_value(dxm.dx_entropy) AS dx_entropy,
      sum(expected) / nullif(sum(kind_mean), 0) AS casemix_index,
      sum(medfee) FILTER (WHERE expected IS NOT NULL) / nullif(sum(expected), 0) AS cost_vs_expected,
      sum(expected) / nullif(sum(medfee) FILTER (WHERE expected IS NOT NULL), 0) AS coding_intensity,
      sum(los) FILTER (WHERE expected_los IS NOT NULL) / nullif(sum(expected_los), 0) AS time_index,
      count_if(inpatient AND expected_inp IS NOT NULL) / nullif(sum(expected_inp), 0) AS admission_index,
      avg(CASE WHEN cv.mdtrt_id IS NOT NULL THEN 1.0 ELSE 0.0 END) AS covisit_share,
      sum(medfee) / count(DISTINCT v.psn_no) AS cost_per_person, sum(fund) / count(DISTINCT v.psn_no) AS fund_per_person,
      count_if(inpatient) / nullif(count(DISTINCT v.psn_no) FILTER (WHERE inpatient), 0) AS stays_per_inpatient,
      avg(CASE WHEN revisit_gap <= 7 THEN 1.0 ELSE 0.0 END) AS revisit7_share,
      avg(CASE WHEN revisit_gap = 0 THEN 1.0 ELSE 0.0 END) AS same_day_revisit_share,
      any_value(pvm.frequent_patient_share) AS frequent_patient_share,
      coalesce(any_value(pvm.frequent_patient_visit_share), 0) AS frequent_patient_visit_share,
      avg(CASE WHEN home.home <> v.fixmedins_code THEN 1.0 ELSE 0.0 END) AS outside_patient_share,
      any_value(pdm.visits_per_physician_day) AS visits_per_physician_day,
      any_value(pdm.physician_day_p90) AS physician_day_p90,
      count(*) / count(DISTINCT begntime::DATE) AS visits_per_active_day,
      avg(CASE WHEN medfee > 2 * expected THEN 1.0 ELSE 0.0 END) FILTER (WHERE expected > 0) AS high_cost_share,
      avg(CASE WHEN los > 2 * expected_los THEN 1.0 ELSE 0.0 END) FILTER (WHERE expected_los > 0) AS long_stay_share,
      sqrt(greatest(sum(lr * lr) - sum(lr) * sum(lr) / count(lr), 0) / nullif(count(lr) - 1, 0)) AS cost_dispersion,
      any_value(dxm.top_dx_share) AS top_dx_share,
      avg(CASE WHEN expected > 1.5 * kind_mean THEN 1.0 ELSE 0.0 END) FILTER (WHERE kind_mean > 0) AS heavy_dx_share,
      avg(CASE WHEN age >= 65 THEN 1.0 ELSE 0.0 END) FILTER (WHERE age IS NOT NULL) AS elderly_share,
      avg(age) AS mean_age,
      avg(CASE WHEN after_death THEN 1.0 ELSE 0.0 END) FILTER (WHERE after_death IS NOT NULL) AS after_death_share
    FROM (SELECT *, CASE WHEN medfee > 0 AND expected > 0 THEN ln(medfee / expected)::{EXACT} END AS lr
          FROM an_visit) v
      LEFT JOIN sp ON sp.psn_no = v.psn_no AND sp.period = v.{g}
      LEFT JOIN dxm ON dxm.fixmedins_code = v.fixmedins_code AND dxm.period = v.{g}
      LEFT JOIN an_covisit cv ON cv.mdtrt_id = v.mdtrt_id
      LEFT JOIN home ON home.psn_no = v.psn_no
      LEFT JOIN pvm ON pvm.fixmedins_code = v.fixmedins_code AND pvm.period = v.{g}
      LEFT JOIN pdm ON pdm.fixmedins_code = v.fixmedins_code AND pdm.period = v.{g}
    GROUP BY v.fixmedins_code, v.{g}"""


def _fee_sql(grain: str) -> str:
    per = "period" if grain == "month" else "substr(period, 1, 4)"
    return f"""
    SELECT fixmedins_code, {per} AS period,
      coalesce(sum(det_item_fee_sumamt) FILTER (WHERE med_chrgitm_type IN ('09', '10', '11')), 0)::DOUBLE
        / nullif(sum(det_item_fee_sumamt), 0)::DOUBLE AS drug_share,
      coalesce(sum(det_item_fee_sumamt) FILTER (WHERE med_chrgitm_type = '08'), 0)::DOUBLE
        / nullif(sum(det_item_fee_sumamt), 0)::DOUBLE AS consumable_share,
      coalesce(sum(det_item_fee_sumamt) FILTER (WHERE med_chrgitm_type IN ('03', '04')), 0)::DOUBLE
        / nullif(sum(det_item_fee_sumamt), 0)::DOUBLE AS exam_lab_share
    FROM fee WHERE substr(period, 1, 4) IN (SELECT DISTINCT year FROM an_visit) GROUP BY ALL"""


def _physician_sql(grain: str) -> str:
    """Shared physicians per institution and period: physicians (non-null `atddr_no`) attending visits at more
    than one institution in the period, and the visits they attend here."""
    g = GRAINS[grain]
    return f"""
    SELECT fixmedins_code, period, avg(CASE WHEN shared THEN 1.0 ELSE 0.0 END) AS shared_physician_share,
      sum(CASE WHEN shared THEN n ELSE 0 END) / sum(n) AS shared_physician_visit_share
    FROM (SELECT *, count(*) OVER (PARTITION BY atddr_no, period) > 1 AS shared
          FROM (SELECT fixmedins_code, {g} AS period, atddr_no, count(*) AS n FROM an_visit
                WHERE atddr_no IS NOT NULL GROUP BY ALL))
    GROUP BY ALL"""


def _suspect_sql(grain: str) -> str:
    per = "period" if grain == "month" else "substr(period, 1, 4)"
    return (f"SELECT fixmedins_code, {per} AS period, count(*) AS n_suspects, sum(amount)::DOUBLE AS suspect_amount "
            "FROM suspects GROUP BY ALL")


def compute_indicators(con, have: set[str], years: list[str]) -> pa.Table:
    """Indicators of every institution with visits in `years`, per month and per year (see module doc).
    Needs the temp tables `an_visit` (`build_visits`) and `an_covisit` (mdtrt_id of co-visits); `have` names
    the optional columns present (`present_columns`)."""
    parts = []
    for grain in GRAINS:
        phy = f"LEFT JOIN ({_physician_sql(grain)}) p USING (fixmedins_code, period)"
        fee = (f"LEFT JOIN ({_fee_sql(grain)}) f USING (fixmedins_code, period)" if "fee" in have else "")
        sus = (f"LEFT JOIN ({_suspect_sql(grain)}) s USING (fixmedins_code, period)" if "suspects" in have else "")
        fee_cols = ("f.drug_share, f.consumable_share, f.exam_lab_share" if fee else
                    "NULL::DOUBLE AS drug_share, NULL::DOUBLE AS consumable_share, NULL::DOUBLE AS exam_lab_share")
        sus_cols = ("coalesce(s.suspect_amount, 0) / nullif(a.fund_total, 0) AS suspect_amount_share, "
                    "100.0 * coalesce(s.n_suspects, 0) / a.visits AS suspects_per_100_visits" if sus else
                    "NULL::DOUBLE AS suspect_amount_share, NULL::DOUBLE AS suspects_per_100_visits")
        parts.append(f"SELECT a.*, p.shared_physician_share, p.shared_physician_visit_share, {fee_cols}, {sus_cols} "
                     f"FROM ({_visit_agg_sql(grain)}) a {phy} {fee} {sus}")
    absent = absent_inputs(have)
    absent_sql = "'" + ",".join(absent) + "'" if absent else "NULL"
    # an indicator of a missing column is null, not the 0 a count of nulls would give (`physicians`)
    cols = ", ".join(f"CAST({'NULL' if i.needs in COLUMN_INPUTS and i.needs in absent else i.name} AS DOUBLE) "
                     f"AS {i.name}" for i in INDICATORS)
    sql = (f"SELECT fixmedins_code, period, grain, {cols}, CAST({absent_sql} AS VARCHAR) AS absent_inputs "
           f"FROM ({' UNION ALL '.join(parts)}) ORDER BY grain, period, fixmedins_code")
    return con.sql(sql).to_arrow_table()


#: the view each indicator input is registered as
VIEW_OF = {"fee_list": "fee", "gold/suspects": "suspects"}
#: optional columns read as inputs of their own (`view.column`): present when some analysed visit has a value
COLUMN_INPUTS = {"mdtrt.atddr_no": "SELECT count(atddr_no) > 0 FROM an_visit"}


def present_columns(con, have: set[str]) -> set[str]:
    """`have` and the `COLUMN_INPUTS` with a value in `an_visit` (`build_visits`)."""
    return set(have) | {n for n, sql in COLUMN_INPUTS.items() if con.sql(sql).fetchall()[0][0]}


def absent_inputs(have: set[str]) -> list[str]:
    """The optional inputs (by their lake names: fee_list, diag, psn, gold/suspects; optional columns as
    `mdtrt.atddr_no`) missing from `have` (view names)."""
    return sorted(n for n in {i.needs for i in INDICATORS} - {"mdtrt", "setl"} if VIEW_OF.get(n, n) not in have)

