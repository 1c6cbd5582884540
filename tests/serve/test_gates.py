"""Rule gates (pipelines.serve.gates): what is derived from a rule's query, and that a rule skipped on a pass
would have returned nothing on it."""
from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from pipelines.app.serve import rule_program
from pipelines.catalog import load_catalog
from pipelines.serve import gates
from pipelines.serve.dispatch import session_class
from pipelines.serve.claim import build_claim, claim_model
from pipelines.serve.replay import lake_claims
from pipelines.serve.service import Settings

BASES = {"fee", "fee_list", "visit", "psn", "kb_hilist"}


def test_a_fee_line_joined_to_the_knowledge_base_gates_on_the_codes_meeting_the_kb_conditions():
    sql = ("SELECT f.mdtrt_id FROM fee f JOIN kb_hilist k ON k.hilist_code = f.hilist_code "
           "AND f.fee_date >= k.kb_valid_from WHERE f.is_fund AND k.gend_lmt IS NOT NULL")
    kind, codes = gates.rule_gate(sql, BASES)
    assert kind == "codes"
    assert codes == "SELECT DISTINCT k.hilist_code FROM kb_hilist AS k WHERE NOT k.gend_lmt IS NULL"


def test_conditions_of_one_table_and_of_linked_tables_make_an_exists():
    sql = ("SELECT v.mdtrt_id FROM visit v JOIN psn p ON p.psn_no = v.psn_no "
           "WHERE p.die_date IS NOT NULL AND v.adm_date > p.die_date")
    kind, exists = gates.rule_gate(sql, BASES)
    assert kind == "exists"
    assert exists.startswith("EXISTS(SELECT 1 FROM psn AS p CROSS JOIN visit AS v WHERE ")
    assert "p.psn_no = v.psn_no" in exists and "v.adm_date > p.die_date" in exists


def test_ctes_and_subqueries_pass_their_gate_up():
    sql = ("WITH lim AS (SELECT f.* FROM fee f JOIN kb_hilist k ON k.hilist_code = f.hilist_code "
           "WHERE k.ipt_only = '1') SELECT x.mdtrt_id FROM (SELECT * FROM lim l) x")
    assert gates.rule_gate(sql, BASES)[0] == "codes"


@pytest.mark.parametrize("sql", [
    # a LEFT-joined or ANTI-joined table is not required, nor are its conditions
    "SELECT v.mdtrt_id FROM visit v LEFT JOIN psn p ON p.psn_no = v.psn_no AND p.die_date IS NOT NULL",
    "SELECT v.mdtrt_id FROM visit v ANTI JOIN psn p ON p.psn_no = v.psn_no WHERE p.gend = '1'",
    # an aggregate without GROUP BY returns a row on empty input
    "SELECT count(*) AS n FROM visit v WHERE v.is_inpatient",
    # a RIGHT or FULL join keeps rows of the other side
    "SELECT v.mdtrt_id FROM visit v RIGHT JOIN psn p ON p.psn_no = v.psn_no WHERE v.is_inpatient",
    # an unqualified column might be a select alias: not copied
    "SELECT v.mdtrt_id, 1 AS is_inpatient FROM visit v WHERE is_inpatient",
    # a subquery or a volatile function in a condition: not copied
    "SELECT v.mdtrt_id FROM visit v WHERE v.psn_no IN (SELECT psn_no FROM psn)",
    "SELECT v.mdtrt_id FROM visit v WHERE v.adm_date < current_date",
    # a table that is not a pass table (a CTE of the rule defined elsewhere, a catalog table): no proof
    "SELECT x.mdtrt_id FROM other.visit x WHERE x.is_inpatient",
])
def test_what_proves_nothing(sql):
    assert gates.rule_gate(sql, BASES) is None


def test_a_union_needs_one_branch_and_with_group_by_an_aggregate_is_gated():
    sql = ("SELECT v.mdtrt_id FROM visit v WHERE v.is_inpatient UNION ALL "
           "SELECT v.mdtrt_id FROM visit v GROUP BY v.mdtrt_id HAVING count(*) > 1")
    gate = gates.rule_gate(sql, BASES)
    assert gate is None            # the second branch has no condition of its own: nothing proved
    sql2 = sql.replace("FROM visit v GROUP BY", "FROM visit v WHERE NOT v.is_inpatient GROUP BY")
    gate2 = gates.rule_gate(sql2, BASES)
    assert gate2[0] == "any" and len(gate2[1]) == 2
    values = {t: False for t in gates.terms(gate2)}
    assert not gates.holds(gate2, values)
    values[gate2[1][1]] = True
    assert gates.holds(gate2, values)


def test_the_rule_library_has_gates():
    program = rule_program(load_catalog(), "salt")
    gated = {r.rule_id: r.gate for r in program.rules if r.gate is not None}
    codes = [rid for rid, g in gated.items() if any(t[0] == "codes" for t in gates.terms(g))]
    assert len(gated) == len(program.rules)
    assert {"gender_restricted_drug", "age_restricted_drug", "indication_restricted_drug",
            "min_interval_drug"} <= set(codes)


def test_a_pass_runs_the_rules_whose_gate_holds():
    code = ("codes", "SELECT hilist_code FROM kb_hilist WHERE gend_lmt IS NOT NULL")
    fund = ("exists", "EXISTS(SELECT 1 FROM fee AS f WHERE f.is_fund)")
    rules = [SimpleNamespace(gate=g) for g in (None, code, fund, ("all", (code, fund)), ("any", (code, fund)))]
    asked = []
    found = gates.PassGates(rules, lambda sql: asked.append(sql) or ["A1", "A2"])
    assert asked == [code[1]] and found.exists == [fund]
    assert found.ran({"B9"}, [False]) == [0]
    assert found.ran({"B9", "A2"}, [False]) == [0, 1, 4]
    assert found.ran({"B9"}, [1]) == [0, 2, 4]                  # SQLite's EXISTS is 0 or 1
    assert found.ran({"A1"}, [True]) == [0, 1, 2, 3, 4]


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_a_rule_skipped_on_a_pass_returns_nothing_on_it(sample_lake, engine):
    """On the sample district: every rule a pass skips returns no row when run anyway on the same tables."""
    program = rule_program(load_catalog(), "salt")
    from pipelines.app.serve import claim_service
    service = claim_service(sample_lake, Settings(token="t", refresh_seconds=0, background_load=False))
    service.holder.load()
    try:
        session = session_class(engine)(service.holder.current, program)
        run_alone = ((lambda i: session.cur.execute(f"EXECUTE r{i}").fetchall()) if engine == "duckdb" else
                     (lambda i: session.con.execute(session.rules[i]).fetchall()))
        ids = sample_lake.read("silver/mdtrt", columns=["mdtrt_id"]).column("mdtrt_id").to_pylist()
        random.Random(3).shuffle(ids)
        model = claim_model(5000)
        claims = [build_claim(model.model_validate(b)) for b in lake_claims(sample_lake, visits=ids[:400])]
        skipped = 0
        run_rules = session._run_rules

        def run_and_try_the_skipped():          # inside the pass, before its rollback empties the tables
            nonlocal skipped
            found = run_rules()
            for i in range(len(program.rules)):
                if i not in session.ran:
                    skipped += 1
                    assert not run_alone(i), program.rules[i].rule_id
            return found
        session._run_rules = run_and_try_the_skipped
        for k in range(0, len(claims), 8):
            batch, seen = [], set()
            for c in claims[k:k + 8]:
                if c.psn_no not in seen and c.mdtrt_id not in {b.mdtrt_id for b in batch}:
                    seen.add(c.psn_no)
                    batch.append(c)
            session.check_many(batch)
        assert skipped > 5 * len(claims) // 8          # passes do skip rules
        session.close()
    finally:
        service.holder.close()
