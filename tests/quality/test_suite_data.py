"""The quality suites are data: the files are well-formed, every frame and column they name is computed,
the messages say what GX rejected, and what the files hold is what runs."""
from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from fg_lakes import clean_rows, gate_catalog, suspect, table

from pipelines import contract
from pipelines.quality import gate, gx as qgx, messages, silver
from pipelines.quality.gate import GateScope, run_gate
from pipelines.quality.gate_frames import FRAMES as GATE_FRAMES, REFERENCE_VIEWS, GateInputs
from pipelines.quality.messages import Message
from pipelines.quality.silver import validate_silver
from pipelines.quality.silver_frames import FRAMES as SILVER_FRAMES, SilverInputs
from pipelines.quality.suite import load_suite, problems
from pipelines.screen.pipeline import scope_table

CATALOG = gate_catalog()
RULES = CATALOG.select()


def recorded(versions) -> GateScope:
    """The scope a screening of the hand-made silver records (tests/fg_lakes.py; run R2, as clean_rows)."""
    pairs = {("H1", "2023-01"): 1, ("H1", "2023-03"): 4, ("H1", "2023-04"): 3, ("H2", "2023-03"): 3}
    return GateScope(scope_table(pairs, run_id="R2", fingerprint="fp1", input_versions=json.dumps(versions)))


# ------------------------------------------------------------------------------------ well-formed

@pytest.mark.parametrize("path", [gate.SUITE_PATH, silver.SUITE_PATH], ids=["gate", "silver"])
def test_suite_file_is_well_formed(path):
    suite = load_suite(path)  # raises on a malformed record
    assert problems(suite) == []
    gxe = qgx.expectations()
    for e in suite.expectations:
        cls = getattr(gxe, e.expect, None)
        assert cls is not None, f"{e.name}: no GX expectation {e.expect}"
        assert set(e.kwargs) <= set(cls.__fields__), f"{e.name}: {e.expect} takes no {set(e.kwargs) - set(cls.__fields__)}"
        assert e.description[0] and e.description[1] and e.message.zh and e.message.en
    assert path.parent == Path(gate.__file__).parent and path.suffix == ".yml"  # shipped as package data


def test_the_gate_suite_holds_every_check_of_the_gate():
    names = [e.name for e in load_suite(gate.SUITE_PATH).expectations]
    assert names == ["columns_present", "column_types", "no_extra_columns", "no_personal_data_columns",
                     "suspect_id_not_null", "suspect_id_unique", "active_rules_only", "grain_keys_filled",
                     "period_format", "refers_to_silver", "amount_not_negative", "amount_within_record",
                     "no_id_number", "no_person_name", "amount_not_null", "one_id_per_finding",
                     "period_is_month_of_event", "lineage_of_the_screening", "inside_the_screened_scope",
                     "hits_within_band", "scope_recorded", "scope_of_this_list", "scope_of_one_run",
                     "scope_not_emptied", "scope_not_shrunk"]
    # scope first: the frames are validated in the order of the file's `frames`
    assert load_suite(gate.SUITE_PATH).frames == ["staging", "scope", "columns", "suspects", "rules"]
    period = next(e for e in load_suite(gate.SUITE_PATH).expectations if e.name == "period_format")
    assert period.kwargs["regex"] == "$month_pattern"  # the contract's pattern, not a copy of it


def _gate_frame_columns(lake) -> dict[str, set[str]]:
    refs = {view: gate.read_references(lake, table([]))[view] for view in REFERENCE_VIEWS}
    inputs = GateInputs(table(clean_rows()), CATALOG, RULES, refs, {}, 10.0, 20)
    return {kind: set(fn(inputs).column_names) for kind, fn in GATE_FRAMES.items()}


def _silver_frame_columns() -> dict[str, set[str]]:
    tables = {f"silver/{e}": contract.arrow_schema(e).empty_table() for e in contract.ENTITIES}
    tables["silver/fee_list_net"] = tables["silver/fee_list"]
    inputs = SilverInputs(list(tables), tables, {"fee_setl": set(), "fee_mdtrt": set(), "mdtrt": set()})
    out = {}
    for kind, fn in SILVER_FRAMES.items():
        frames = fn(inputs)
        assert frames, f"{kind}: computed nothing for a load that changed every table"
        out[kind] = set.intersection(*(set(f.table.column_names) for f in frames))
    return out


def test_every_frame_and_column_the_suites_name_is_computed(silver_lake):
    lake, _ = silver_lake
    assert problems(load_suite(gate.SUITE_PATH), _gate_frame_columns(lake)) == []
    assert problems(load_suite(silver.SUITE_PATH), _silver_frame_columns()) == []


def test_a_malformed_suite_is_refused(silver_lake, tmp_path):
    raw = yaml.safe_load(gate.SUITE_PATH.read_text(encoding="utf-8"))
    raw["expectations"][1]["kwargs"]["column"] = "type_okay"           # a column no frame computes
    raw["expectations"][2]["frame"] = "colums"                          # a frame nobody lists
    raw["expectations"][3]["message"]["zh"] = "含个人信息列 {colums}"  # a field nobody declares
    raw["expectations"][4]["name"] = "columns_present"                  # a name twice
    raw["expectations"][5]["kwargs"]["value_set"] = "$active"           # a parameter nobody supplies
    path = tmp_path / "gate_suite.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError) as e:
        load_suite(path)
    for words in ("frame 'colums' is not listed", "names ['colums']", "columns_present is defined twice",
                  "kwarg $active"):
        assert words in str(e.value)
    raw["expectations"][11]["message"]["fields"]["amounts"]["of"] = "{amount:.2f} > {amount_capp:.2f}"
    raw["expectations"][2]["frame"], raw["expectations"][3]["message"]["zh"] = "columns", "含个人信息列 {columns}"
    raw["expectations"][4]["name"], raw["expectations"][5]["kwargs"]["value_set"] = "suspect_id_not_null", [""]
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    suite = load_suite(path)
    assert problems(suite, _gate_frame_columns(silver_lake[0])) == [
        "expectation column_types: frame columns has no column type_okay",
        "expectation amount_within_record: field amounts names ['amount_capp'], not columns of frame suspects"]


# ------------------------------------------------------------------------------------ messages

def test_message_fields():
    rows = [{"v": v} for v in ["b", "a", "b", "c", "abcdef"]]
    assert messages.field_value({"column": "v", "distinct": "sorted", "limit": 2, "sep": "; ",
                                 "more": "ellipsis"}, rows) == "a; abcdef …"
    assert messages.field_value({"column": "v", "distinct": "first", "limit": 3, "more": "count"}, rows) == \
        "b, a, c … (+1)"
    assert messages.field_value({"column": "v", "distinct": "sorted", "width": 2}, rows) == "a, ab, b, c"
    assert messages.field_value({"column": "v", "distinct": "first", "reduce": "count"}, rows) == 4
    assert messages.field_value({"of": "<{v}>", "limit": 2}, rows) == "<b>, <a>"
    assert messages.field_value({"column": "x", "reduce": "min"}, [{"x": 3.5}, {"x": -1.25}]) == -1.25


def test_messages_per_row_group_all_and_once():
    rows = [{"rule_id": "r1", "fixmedins_code": "H2"}, {"rule_id": "r2", "fixmedins_code": "H1"},
            {"rule_id": "r1", "fixmedins_code": "H1"}]
    insts = {"insts": {"column": "fixmedins_code", "distinct": "sorted"}}
    grouped = Message(zh="规则 {rule_id} 有 {n} 条（机构 {insts}）", en="rule {rule_id}: {n}", per=("rule_id",),
                      fields=insts)
    assert messages.describe(grouped, rows, {}) == ["规则 r1 有 2 条（机构 H1, H2）/ rule r1: 2",
                                                    "规则 r2 有 1 条（机构 H1）/ rule r2: 1"]
    per_row = Message(zh="{fixmedins_code} 超过 {band:g} 倍", en="{fixmedins_code} over ×{band:g}", per="row", limit=2)
    assert messages.describe(per_row, rows, {"band": 2.0}) == ["H2 超过 2 倍 / H2 over ×2", "H1 超过 2 倍 / H1 over ×2"]
    everything = Message(zh="共 {n} 条", en="{n} in all", per="all")
    assert messages.describe(everything, rows, {}) == ["共 3 条 / 3 in all"]
    assert messages.describe(everything, [], {}) == []
    once = Message(zh="{table} 缺少必填列", en="{table} lacks columns", per="once")
    assert messages.describe(once, None, {"table": "silver/setl"}) == ["silver/setl 缺少必填列 / silver/setl lacks columns"]


FRAME = pa.table({
    "s": pa.array(["a", "b", "b", None, "2023-13", "2023-03"], pa.string()),
    "x": pa.array([-1.0, 0.0, 0.004, 0.006, None, 5.0], pa.float64()),
    "flag": pa.array([True, False, None, True, True, False], pa.bool_()),
})
ROW_CASES = [
    ("ExpectColumnValuesToNotBeNull", {"column": "s"}),
    ("ExpectColumnValuesToBeNull", {"column": "x"}),
    ("ExpectColumnValuesToBeInSet", {"column": "flag", "value_set": [True]}),
    ("ExpectColumnValuesToBeInSet", {"column": "s", "value_set": ["a", "b"]}),
    ("ExpectColumnValuesToBeUnique", {"column": "s"}),
    ("ExpectColumnValuesToMatchRegex", {"column": "s", "regex": contract.MONTH_RE.pattern}),
    ("ExpectColumnValuesToBeBetween", {"column": "x", "min_value": 0}),
    ("ExpectColumnValuesToBeBetween", {"column": "x", "max_value": 0.005}),
]


def test_the_rows_a_message_names_are_the_rows_gx_rejects():
    gxe = qgx.expectations()
    checks = [qgx.Check(f"c{i}", "f", getattr(gxe, expect)(**kwargs)) for i, (expect, kwargs) in enumerate(ROW_CASES)]
    run = qgx.run_suite("t", {"f": FRAME}, checks, None)
    by_name = {o.check.name: o.unexpected_count for o in run.outcomes}
    for i, (expect, kwargs) in enumerate(ROW_CASES):
        mask = messages.unexpected_mask(FRAME, expect, kwargs)
        assert sum(mask.to_pylist()) == by_name[f"c{i}"], (expect, kwargs)
    assert messages.unexpected_mask(FRAME, "ExpectColumnValuesToBeUnique", {"column": "s"}).to_pylist() == \
        [False, True, True, False, False, False]


# ------------------------------------------------------------------------------------ the data drives it

def _without(path: Path, tmp_path: Path, *names: str) -> Path:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["expectations"] = [e for e in raw["expectations"] if e["name"] not in names]
    out = tmp_path / path.name
    out.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out


def test_an_expectation_removed_from_the_gate_suite_is_no_longer_run(silver_lake, tmp_path, monkeypatch):
    lake, versions = silver_lake
    negative = table(clean_rows(versions) + [suspect("daily_cap_item", "daily_cap", "H1", "2023-04", mdtrt="M2",
                                                     sn="3", amount="-5.00", versions=versions)])

    def run(t):
        return run_gate(lake, t, catalog=CATALOG, rules=RULES, scope=recorded(versions),
                        report_dir=tmp_path / "report", previous={}, band=10.0, min_hits=20)
    full = run(negative)
    assert not full.success and full.results["gate.amount_not_negative.unexpected"] == 1
    monkeypatch.setattr(gate, "SUITE_PATH", _without(gate.SUITE_PATH, tmp_path, "amount_not_negative"))
    res = run(negative)
    assert res.success, res.failures
    assert "gate.amount_not_negative.unexpected" not in res.results
    assert res.results["gate_expectations"] == full.results["gate_expectations"] - 1


def test_a_frame_no_expectation_names_is_not_computed(silver_lake, tmp_path, monkeypatch):
    lake, versions = silver_lake

    def refuse(inputs):
        raise AssertionError("the rules frame was computed")
    monkeypatch.setitem(GATE_FRAMES, "rules", refuse)
    monkeypatch.setattr(gate, "SUITE_PATH", _without(gate.SUITE_PATH, tmp_path, "hits_within_band"))
    res = run_gate(lake, table(clean_rows(versions)), catalog=CATALOG, rules=RULES, scope=recorded(versions),
                   report_dir=tmp_path / "r",
                   previous={"daily_cap_item": 0}, band=1.0, min_hits=1)  # would exceed the band
    assert res.success and res.results["gate_expectations"] == 24


def test_an_expectation_removed_from_the_silver_suite_is_no_longer_run(silver_lake, tmp_path, monkeypatch):
    lake, _ = silver_lake  # silver/setl S1 = 80.00 = its two netted lines of 40.00
    setl = lake.read("silver/setl")
    rows = [r | {"medfee_sumamt": D("80.50")} if r["setl_id"] == "S1" else r for r in setl.to_pylist()]
    lake.overwrite("silver/setl", pa.Table.from_pylist(rows, schema=setl.schema))
    res = validate_silver(lake, {}, "L1", report_dir=tmp_path / "r1")
    assert any("settlement S1: medfee_sumamt 80.50 vs netted lines 80.00" in f for f in res.failures), res.failures
    monkeypatch.setattr(silver, "SUITE_PATH", _without(silver.SUITE_PATH, tmp_path, "setl.total_matches_lines"))
    res2 = validate_silver(lake, {}, "L1", report_dir=tmp_path / "r2")
    assert not any("settlement S1" in f for f in res2.failures), res2.failures
    assert res2.results["silver_expectations"] == res.results["silver_expectations"] - 1


def test_a_new_message_in_the_data_is_the_message_said(silver_lake, tmp_path, monkeypatch):
    lake, versions = silver_lake
    raw = yaml.safe_load(gate.SUITE_PATH.read_text(encoding="utf-8"))
    for e in raw["expectations"]:
        if e["name"] == "refers_to_silver":
            e["message"]["en"] = "rule {rule_id}: {n} orphans, first {records}"
    path = tmp_path / "gate_suite.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    monkeypatch.setattr(gate, "SUITE_PATH", path)
    orphan = suspect("split_admission_same_diag", "split_admission", "H1", "2023-04", mdtrt="M99",
                     when="2023-04-01 08:00:00")
    res = run_gate(lake, table(clean_rows(versions) + [orphan]), catalog=CATALOG, rules=RULES,
                   scope=recorded(versions), report_dir=tmp_path / "r", previous={}, band=10.0, min_hits=20)
    assert any(f.endswith("/ rule split_admission_same_diag: 1 orphans, first silver/mdtrt mdtrt_id = M99")
               for f in res.failures), res.failures


def test_a_gate_suite_without_expectations_fails_closed(silver_lake, tmp_path, monkeypatch):
    lake, versions = silver_lake
    names = [e.name for e in load_suite(gate.SUITE_PATH).expectations]
    monkeypatch.setattr(gate, "SUITE_PATH", _without(gate.SUITE_PATH, tmp_path, *names))
    with pytest.raises(ValueError, match="holds no expectation"):
        run_gate(lake, table(clean_rows(versions)), catalog=CATALOG, rules=RULES, scope=recorded(versions),
                 report_dir=tmp_path / "r",
                 previous={}, band=10.0, min_hits=20)
