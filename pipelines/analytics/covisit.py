"""结伴就医: person pairs who visit the same institution on the same days far more often than chance.

For an institution and year with D days of visits, two persons with n_a and n_b visit days there meet by
chance about n_a·n_b / D times. A pair is flagged when it met on at least `min_days` days and at least
`min_ratio` times the chance expectation. Groups are the connected components of flagged pairs.
Only persons with at least `min_days` visit days at the institution can form a pair, which keeps the
self-join small.
"""
from __future__ import annotations

import pyarrow as pa


def covisit_pairs(con, min_days: int, min_ratio: float) -> pa.Table:
    """Flagged pairs from the temp table `an_visit`: fixmedins_code, year, psn_a, psn_b, co_days, expected."""
    return con.sql(f"""
    WITH pv AS (SELECT DISTINCT fixmedins_code, year, psn_no, begntime::DATE AS day FROM an_visit),
         d AS (SELECT fixmedins_code, year, count(DISTINCT day) AS days FROM pv GROUP BY ALL),
         c AS (SELECT fixmedins_code, year, psn_no, count(*) AS n FROM pv GROUP BY ALL HAVING count(*) >= {int(min_days)}),
         p AS (SELECT pv.* FROM pv SEMI JOIN c USING (fixmedins_code, year, psn_no)),
         pairs AS (SELECT a.fixmedins_code, a.year, a.psn_no AS psn_a, b.psn_no AS psn_b, count(*) AS co_days
                   FROM p a JOIN p b ON a.fixmedins_code = b.fixmedins_code AND a.year = b.year AND a.day = b.day
                                    AND a.psn_no < b.psn_no
                   GROUP BY ALL HAVING count(*) >= {int(min_days)})
    SELECT pairs.*, ca.n * cb.n / d.days::DOUBLE AS expected
    FROM pairs JOIN d USING (fixmedins_code, year)
      JOIN c ca ON ca.fixmedins_code = pairs.fixmedins_code AND ca.year = pairs.year AND ca.psn_no = pairs.psn_a
      JOIN c cb ON cb.fixmedins_code = pairs.fixmedins_code AND cb.year = pairs.year AND cb.psn_no = pairs.psn_b
    WHERE co_days >= {float(min_ratio)} * ca.n * cb.n / d.days::DOUBLE
    ORDER BY fixmedins_code, year, psn_a, psn_b""").to_arrow_table()


def covisit_groups(pairs: pa.Table) -> pa.Table:
    """Connected components of flagged pairs per institution and year: fixmedins_code, year, group_id (the
    smallest psn_no of the group), psn_no, members, pairs."""
    parent: dict[tuple, tuple] = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    rows = pairs.select(["fixmedins_code", "year", "psn_a", "psn_b"]).to_pylist()
    for r in rows:
        a, b = (r["fixmedins_code"], r["year"], r["psn_a"]), (r["fixmedins_code"], r["year"], r["psn_b"])
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[tuple, list] = {}
    for node in list(parent):
        members.setdefault(find(node), []).append(node[2])
    n_pairs: dict[tuple, int] = {}
    for r in rows:
        root = find((r["fixmedins_code"], r["year"], r["psn_a"]))
        n_pairs[root] = n_pairs.get(root, 0) + 1
    out = {"fixmedins_code": [], "year": [], "group_id": [], "psn_no": [], "members": [], "pairs": []}
    for root, ps in sorted(members.items()):
        for p in sorted(ps):
            out["fixmedins_code"].append(root[0])
            out["year"].append(root[1])
            out["group_id"].append(root[2])
            out["psn_no"].append(p)
            out["members"].append(len(ps))
            out["pairs"].append(n_pairs.get(root, 0))
    return pa.table(out, schema=pa.schema([("fixmedins_code", pa.string()), ("year", pa.string()),
                                           ("group_id", pa.string()), ("psn_no", pa.string()),
                                           ("members", pa.int64()), ("pairs", pa.int64())]))


def mark_covisits(con, pairs: pa.Table) -> None:
    """Temp table `an_covisit`: mdtrt_id of every visit a flagged pair made together (same day)."""
    con.register("an_pairs", pairs)
    con.execute("""
    CREATE OR REPLACE TEMP TABLE an_covisit AS
    WITH pp AS (SELECT fixmedins_code, year, psn_a AS psn_no, psn_b AS other FROM an_pairs
                UNION ALL SELECT fixmedins_code, year, psn_b, psn_a FROM an_pairs)
    SELECT DISTINCT v.mdtrt_id FROM an_visit v
      JOIN pp ON pp.fixmedins_code = v.fixmedins_code AND pp.year = v.year AND pp.psn_no = v.psn_no
      JOIN an_visit o ON o.fixmedins_code = v.fixmedins_code AND o.psn_no = pp.other
                     AND o.begntime::DATE = v.begntime::DATE""")
    con.unregister("an_pairs")
