"""Tampering with staging, as a hostile feed, a buggy rule or an unlucky operator would: on a real lake (the
small generated district, loaded, screened by `fundguard screen` and published by `fundguard publish`),
each kind of tampered staging list is refused by `fundguard publish` with exit code 1 and a plain message
naming what is wrong, and gold/suspects stays exactly as it was (same Delta version, same rows). A screening
of one institution publishes that institution only; an intended drop goes through with --accept-drop."""
from __future__ import annotations

import csv
import json
import shutil
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipelines import config
from pipelines.app.load import load_drop
from pipelines.cli import main
from pipelines.contract import GOLD_SUSPECTS, STAGING_SUSPECTS, SUSPECT_PARTITION_BY
from pipelines.screen.engines import DuckDBEngine
from pipelines.screen.pipeline import STAGING_SCOPE, write_staging_list
from pipelines.storage import Lake


@pytest.fixture(scope="module")
def published(small_drop, tmp_path_factory) -> Lake:
    """The small district loaded, screened (every institution and month) and published: gold version 0."""
    lake = Lake(tmp_path_factory.mktemp("tamper") / "lake")
    load_drop(small_drop, lake, config.load(), progress=False)
    assert main(["screen", "--lake", str(lake.root), "--quiet"]) == 0
    assert main(["publish", "--lake", str(lake.root)]) == 0
    assert lake.version(GOLD_SUSPECTS) == 0 and lake.read(GOLD_SUSPECTS).num_rows >= 40
    return lake


@pytest.fixture(scope="module")
def persons(small_drop) -> list[dict]:
    """The drop's insured persons in clear (psn_no, psn_name, certno): silver holds only their hashes."""
    with (small_drop / "psn.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def lake(published, tmp_path) -> Lake:
    """A copy of the published lake for one test."""
    shutil.copytree(published.root, tmp_path / "lake", ignore=shutil.ignore_patterns("_mlflow", "_reports", "_lock"))
    return Lake(tmp_path / "lake")


def gold(lake: Lake) -> tuple[int, pa.Table]:
    return lake.version(GOLD_SUSPECTS), lake.read(GOLD_SUSPECTS).sort_by([("suspect_id", "ascending")])


def restage(lake: Lake, suspects: pa.Table, scope: pa.Table | None = None) -> None:
    """Write `suspects` to staging with `scope` recorded for it, as a screening does (a buggy rule's list
    comes out this way); without `scope`, the scope the screening recorded, re-stamped."""
    write_staging_list(lake, DuckDBEngine(), suspects, lake.read(STAGING_SCOPE) if scope is None else scope)


def with_values(t: pa.Table, column: str, rows: list[int], value) -> pa.Table:
    values = t.column(column).to_pylist()
    for i in rows:
        values[i] = value(values[i]) if callable(value) else value
    return t.set_column(t.schema.get_field_index(column), column, pa.array(values, t.schema.field(column).type))


def first(t: pa.Table, column: str, value) -> int:
    return t.column(column).to_pylist().index(value)


# ------------------------------------------------------------------------------------ the tampering

def emptied(lake, staged, people):                   # the whole list gone: would wipe gold
    restage(lake, staged.slice(0, 0))


def shrunk(lake, staged, people):                    # nine suspects in ten gone
    restage(lake, staged.take(list(range(0, staged.num_rows, 10))))


def institution_dropped(lake, staged, people):       # every suspect of the busiest institution gone
    counts = pc.value_counts(staged.column("fixmedins_code")).to_pylist()
    busiest = max(counts, key=lambda c: c["counts"])["values"]
    restage(lake, staged.filter(pc.not_equal(staged.column("fixmedins_code"), busiest)))


def null_amount(lake, staged, people):
    restage(lake, with_values(staged, "amount", [3], None))


def same_finding_twice(lake, staged, people):        # one finding again under a made-up id
    twin = with_values(staged.slice(5, 1), "suspect_id", [0], "f" * 64)
    restage(lake, pa.concat_tables([staged, twin]))


def id_number_in_psn_no(lake, staged, people):       # a real certno of the drop as the person number
    restage(lake, with_values(staged, "psn_no", [0], people[0]["certno"]))


def id_number_in_hilist_code(lake, staged, people):
    restage(lake, with_values(staged, "hilist_code", [1], people[1]["certno"]))


def spaced_id_number_in_evidence(lake, staged, people):
    c = people[2]["certno"]
    restage(lake, with_values(staged, "evidence", [2], lambda e: f"{e}（{c[:6]} {c[6:14]} {c[14:]}）"))


def hyphenated_id_number_in_evidence(lake, staged, people):
    c = people[3]["certno"]
    restage(lake, with_values(staged, "evidence", [4], lambda e: f"证件{c[:6]}-{c[6:10]}-{c[10:14]}-{c[14:]}；{e}"))


def old_15_digit_id_in_evidence(lake, staged, people):
    c = people[4]["certno"]  # the 18-digit number's 15-digit form: no century, no check character
    restage(lake, with_values(staged, "evidence", [6], lambda e: f"{e}原身份证号{c[:6]}{c[8:17]}。"))


def patients_name_in_evidence(lake, staged, people):  # the row's own patient, pasted into the sentence
    names = {p["psn_no"]: p["psn_name"] for p in people}
    i = next(i for i, p in enumerate(staged.column("psn_no").to_pylist()) if p in names)
    name = names[staged.column("psn_no")[i].as_py()]
    restage(lake, with_values(staged, "evidence", [i], lambda e: f"患者{name}于{e}"))


def spaced_name_in_psn_no(lake, staged, people):     # anyone's name, spaced, where the person number goes
    name = people[7]["psn_name"]
    restage(lake, with_values(staged, "psn_no", [7], " ".join(name)))


def period_not_event_month(lake, staged, people):    # moved to the month before its event
    i = next(i for i, p in enumerate(staged.column("period").to_pylist()) if not p.endswith("-01"))
    month = staged.column("period")[i].as_py()
    restage(lake, with_values(staged, "period", [i], f"{month[:5]}{int(month[5:]) - 1:02d}"))


def two_runs(lake, staged, people):                  # another run's findings mixed in
    other = with_values(staged.slice(0, 3), "run_id", [0, 1, 2], "0" * 32)
    other = with_values(other, "suspect_id", [0, 1, 2], lambda s: s[::-1])
    restage(lake, pa.concat_tables([staged.slice(3), other]))


def other_rule_set(lake, staged, people):            # findings stamped with another rule-set fingerprint
    restage(lake, with_values(staged, "rule_set_fingerprint", [0, 1], "0123456789abcdef"))


def rewritten_after_screening(lake, staged, people):  # staging overwritten, the scope left behind
    lake.overwrite(STAGING_SUSPECTS, staged.slice(1), list(SUSPECT_PARTITION_BY))


def scope_missing(lake, staged, people):             # staging/scope deleted
    shutil.rmtree(lake.path(STAGING_SCOPE))


def outside_the_scope(lake, staged, people):         # a list of every institution, a scope of one
    scope = lake.read(STAGING_SCOPE)
    one = scope.filter(pc.equal(scope.column("fixmedins_code"), staged.column("fixmedins_code")[0]))
    restage(lake, staged, one)


def negative_amount(lake, staged, people):
    restage(lake, with_values(staged, "amount", [8], lambda a: -a))


def amount_above_its_record(lake, staged, people):
    i = first(staged, "family", "daily_cap") if "daily_cap" in staged.column("family").to_pylist() else 9
    restage(lake, with_values(staged, "amount", [i], lambda a: a + Decimal("100000.00")))


def made_up_visit(lake, staged, people):
    # a finding that names a visit (an item-month finding has none to check; the staged rows' order varies)
    i = next(i for i, v in enumerate(staged.column("mdtrt_id").to_pylist()) if v)
    restage(lake, with_values(staged, "mdtrt_id", [i], "MD2023NOSUCHVISIT"))


def retired_rule(lake, staged, people):
    restage(lake, with_values(staged, "rule_id", [11], "no_such_rule"))


def certno_column(lake, staged, people):
    restage(lake, staged.append_column("certno", pa.array([people[0]["certno"]] * staged.num_rows)))


def one_id_twice(lake, staged, people):
    restage(lake, pa.concat_tables([staged, staged.slice(12, 1)]))


#: kind -> (the tampering, words the refusal says)
TAMPERING = {
    "emptied": (emptied, "publishing would empty it"),
    "shrunk": (shrunk, "last published (below 50%)"),
    "institution_dropped": (institution_dropped, "none in this list: publishing would empty it"),
    "null_amount": (null_amount, "suspects without an amount"),
    "same_finding_twice": (same_finding_twice, "repeat one finding (same rule and record keys)"),
    "id_number_in_psn_no": (id_number_in_psn_no, "identity number in psn_no"),
    "id_number_in_hilist_code": (id_number_in_hilist_code, "identity number in hilist_code"),
    "spaced_id_number_in_evidence": (spaced_id_number_in_evidence, "identity number in evidence"),
    "hyphenated_id_number_in_evidence": (hyphenated_id_number_in_evidence, "identity number in evidence"),
    "old_15_digit_id_in_evidence": (old_15_digit_id_in_evidence, "identity number in evidence"),
    "patients_name_in_evidence": (patients_name_in_evidence, "insured person's name in evidence"),
    "spaced_name_in_psn_no": (spaced_name_in_psn_no, "insured person's name in psn_no"),
    "period_not_event_month": (period_not_event_month, "period is not the month of event_time"),
    "two_runs": (two_runs, "run_id not as the screening"),
    "other_rule_set": (other_rule_set, "rule_set_fingerprint not as the screening"),
    "rewritten_after_screening": (rewritten_after_screening, "the list was rewritten after its screening"),
    "scope_missing": (scope_missing, "staging records no screened scope"),
    "outside_the_scope": (outside_the_scope, "outside the (institution, month) scope"),
    "negative_amount": (negative_amount, "negative amount"),
    "amount_above_its_record": (amount_above_its_record, "exceeds the line amount or the visit/settlement total"),
    "made_up_visit": (made_up_visit, "refer to no existing silver record"),
    "retired_rule": (retired_rule, "rule no_such_rule is not an active rule"),
    "certno_column": (certno_column, "personal-data columns: certno"),
    "one_id_twice": (one_id_twice, "appear more than once"),
}


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_tampered_staging_is_refused_and_gold_stays(lake, persons, capsys, kind):
    tamper, words = TAMPERING[kind]
    before = gold(lake)
    tamper(lake, lake.read(STAGING_SUSPECTS), persons)
    capsys.readouterr()
    assert main(["publish", "--lake", str(lake.root)]) == 1
    out = capsys.readouterr().out
    assert "未通过 FAILED" in out and "not published: gold/suspects left as it was" in out
    assert words in out, out
    after = gold(lake)
    assert after[0] == before[0] and after[1].equals(before[1])


def test_the_messages_never_print_a_whole_identity_number(lake, persons, capsys):
    spaced_id_number_in_evidence(lake, lake.read(STAGING_SUSPECTS), persons)
    main(["publish", "--lake", str(lake.root)])
    out = capsys.readouterr().out
    certno = persons[2]["certno"]
    assert f"{certno[:3]}…{certno[-2:]}" in out and certno not in out and certno[6:14] not in out


# ------------------------------------------------------------------------------------ scope

def test_one_institution_screening_publishes_only_that_institution(lake, capsys):
    version, before = gold(lake)
    counts = before.group_by("fixmedins_code").aggregate([("suspect_id", "count")]).to_pylist()
    inst = max(counts, key=lambda r: r["suspect_id_count"])["fixmedins_code"]
    assert len(counts) > 1 and 0 < next(r for r in counts if r["fixmedins_code"] == inst)["suspect_id_count"] \
        < before.num_rows
    assert main(["screen", "--lake", str(lake.root), "--institution", inst, "--quiet"]) == 0
    staged = lake.read(STAGING_SUSPECTS)
    assert set(staged.column("fixmedins_code").to_pylist()) == {inst}
    assert set(lake.read(STAGING_SCOPE).column("fixmedins_code").to_pylist()) == {inst}
    months = len(set(lake.read(STAGING_SCOPE).column("period").to_pylist()))
    capsys.readouterr()
    assert main(["publish", "--lake", str(lake.root)]) == 0
    assert f"replaced the screened scope: 1 家机构 × {months} 个月 / 1 institutions × {months} months" in \
        capsys.readouterr().out

    after_version, after = gold(lake)
    assert after_version == version + 1
    others = pc.not_equal(before.column("fixmedins_code"), inst)
    assert after.filter(pc.not_equal(after.column("fixmedins_code"), inst)).equals(before.filter(others))
    mine = after.filter(pc.equal(after.column("fixmedins_code"), inst))
    assert sorted(mine.column("suspect_id").to_pylist()) == sorted(staged.column("suspect_id").to_pylist())
    assert after.num_rows == before.filter(others).num_rows + staged.num_rows
    assert set(mine.column("run_id").to_pylist()) == set(staged.column("run_id").to_pylist())


def test_publish_with_another_scope_on_the_command_line_is_refused(lake, capsys):
    inst = lake.read(STAGING_SCOPE).column("fixmedins_code")[0].as_py()
    assert main(["screen", "--lake", str(lake.root), "--institution", inst, "--period", "2023", "--quiet"]) == 0
    before = gold(lake)
    capsys.readouterr()
    assert main(["publish", "--lake", str(lake.root), "--period", "2023-03"]) == 2
    assert "staging holds the screening of" in capsys.readouterr().err
    assert main(["publish", "--lake", str(lake.root), "--institution", "H_OTHER"]) == 2
    assert gold(lake)[0] == before[0]
    assert main(["publish", "--lake", str(lake.root), "--period", "2023", "--institution", inst]) == 0


def test_an_intended_drop_goes_through_with_accept_drop(lake, persons, capsys):
    version, before = gold(lake)
    staged = lake.read(STAGING_SUSPECTS)
    shrunk(lake, staged, persons)
    kept = lake.read(STAGING_SUSPECTS)
    assert main(["publish", "--lake", str(lake.root)]) == 1
    assert "publish again with --accept-drop" in capsys.readouterr().out
    assert gold(lake)[0] == version
    assert main(["publish", "--lake", str(lake.root), "--accept-drop"]) == 0
    after_version, after = gold(lake)
    assert after_version == version + 1
    assert sorted(after.column("suspect_id").to_pylist()) == sorted(kept.column("suspect_id").to_pylist())


def test_an_empty_staging_does_not_wipe_gold_unless_accepted(lake, persons, capsys):
    version, before = gold(lake)
    emptied(lake, lake.read(STAGING_SUSPECTS), persons)
    assert main(["gate", "--lake", str(lake.root)]) == 1
    assert main(["publish", "--lake", str(lake.root)]) == 1
    out = capsys.readouterr().out
    assert f"{before.num_rows} suspects published, none in this list: publishing would empty it" in out
    assert gold(lake)[0] == version and gold(lake)[1].equals(before)
    assert main(["publish", "--lake", str(lake.root), "--accept-drop"]) == 0
    assert lake.read(GOLD_SUSPECTS).num_rows == 0


def _findings(t: pa.Table, keep) -> list[tuple]:
    cols = ["suspect_id", "rule_id", "fixmedins_code", "period", "amount", "evidence"]
    return sorted(tuple(r[c] for c in cols) for r in t.select(cols).to_pylist() if keep(r["rule_id"]))


def test_a_screening_of_some_rules_replaces_only_their_findings(lake, capsys):
    """Publication replaces (institution, month) partitions; a list of a few rules replaces only those rules'
    findings there: every other rule's stay as published (they used to be deleted, or the drop check stopped
    the publication)."""
    version, before = gold(lake)
    others = {r for r in before.column("rule_id").to_pylist() if r != "daily_cap_item"}
    assert others and "daily_cap_item" in before.column("rule_id").to_pylist()
    assert main(["screen", "--lake", str(lake.root), "--rule", "daily_cap_item", "--quiet"]) == 0
    assert json.loads(lake.read(STAGING_SCOPE).column("rule_ids")[0].as_py()) == ["daily_cap_item"]
    assert main(["publish", "--lake", str(lake.root)]) == 0
    assert "only the findings of the 1 rules screened" in capsys.readouterr().out
    after_version, after = gold(lake)
    assert after_version == version + 1
    assert _findings(after, lambda r: r != "daily_cap_item") == _findings(before, lambda r: r != "daily_cap_item")
    assert _findings(after, lambda r: r == "daily_cap_item") == _findings(before, lambda r: r == "daily_cap_item")
    assert set(after.column("run_id").to_pylist()) == set(before.column("run_id").to_pylist()) | \
        set(after.filter(pc.equal(after.column("rule_id"), "daily_cap_item")).column("run_id").to_pylist())
    meta = lake.history(GOLD_SUSPECTS)[0]
    assert json.loads(meta["fundguard.only_rules"]) == ["daily_cap_item"]
    import pyarrow.parquet as pq          # the partitions delta-rs rewrote keep plain text
    assert not [f for f in lake.native_files(GOLD_SUSPECTS).files
                if any(pa.types.is_string_view(t) for t in pq.read_schema(f).types)]
    assert json.loads(meta["fundguard.rule_ids"]) == ["daily_cap_item"]


def test_a_rule_that_now_finds_less_drops_only_its_own_findings(lake):
    """The staged list of one rule with one of its findings gone (its institution's rule findings emptied:
    published with --accept-drop): that finding is removed and nothing of any other rule."""
    version, before = gold(lake)
    assert main(["screen", "--lake", str(lake.root), "--rule", "daily_cap_item", "--quiet"]) == 0
    staged = lake.read(STAGING_SUSPECTS)
    gone = staged.column("suspect_id")[0].as_py()
    restage(lake, staged.filter(pc.not_equal(staged.column("suspect_id"), gone)))
    assert main(["publish", "--lake", str(lake.root), "--accept-drop"]) == 0
    _, after = gold(lake)
    assert gone not in after.column("suspect_id").to_pylist()
    assert after.num_rows == before.num_rows - 1
    assert _findings(after, lambda r: r != "daily_cap_item") == _findings(before, lambda r: r != "daily_cap_item")


def test_run_with_tags_replaces_only_the_tagged_rules(lake, small_drop):
    """`fundguard run` (the drop is already loaded: its files are skipped) with the rules of one tag: published
    without --accept-drop, and the other rules' findings are as they were."""
    version, before = gold(lake)
    args = ["run", "--landing", str(small_drop), "--lake", str(lake.root), "--quiet", "--tags", "血液净化"]
    assert main(args) == 0
    after_version, after = gold(lake)
    assert after_version == version + 1
    tagged = set(json.loads(lake.history(GOLD_SUSPECTS)[0]["fundguard.only_rules"]))
    assert tagged and set(before.column("rule_id").to_pylist()) - tagged
    assert _findings(after, lambda r: r not in tagged) == _findings(before, lambda r: r not in tagged)


def test_the_scope_records_the_input_rows_of_each_pair(published):
    scope = published.read(STAGING_SCOPE)
    assert scope.num_rows and len(set(scope.column("run_id").to_pylist())) == 1
    assert set(scope.column("staging_version").to_pylist()) == {published.version(STAGING_SUSPECTS)}
    pairs = {(r["fixmedins_code"], r["period"]): r["input_rows"] for r in scope.to_pylist()}
    visits = published.read("silver/mdtrt", columns=["fixmedins_code", "period"]).to_pylist()
    assert {(v["fixmedins_code"], v["period"]) for v in visits} <= set(pairs)
    total = sum(published.read(t, columns=["period"]).num_rows
                for t in ("silver/fee_list_net", "silver/mdtrt", "silver/setl", "silver/inv_movement"))
    assert sum(pairs.values()) == total
    assert json.loads(scope.column("input_versions")[0].as_py())["silver/mdtrt"] == published.version("silver/mdtrt")
