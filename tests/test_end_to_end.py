"""The walking skeleton end to end: generated drop → lake → screening → gate → gold/suspects.

The generator's answer key (labelled injected violations of every contract family) is the oracle: each
family finds every injected case and nothing else, on both engines, and both engines publish the same list.
"""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines import config
from pipelines.app.load import load_drop
from pipelines.app.screening import screen_gate_publish
from pipelines.catalog import load_catalog
from pipelines.screen.sql import GRAIN_KEYS
from pipelines.storage import Lake

CATALOG = load_catalog()


@pytest.fixture(scope="module")
def drop(district_drop) -> Path:
    return district_drop


@pytest.fixture(scope="module")
def loaded_lake(drop, tmp_path_factory) -> Lake:
    lake = Lake(tmp_path_factory.mktemp("lake"))
    load_drop(drop, lake, config.load(), progress=False)
    return lake


def answer_key(drop: Path) -> dict[str, set[tuple]]:
    key: dict[str, set[tuple]] = defaultdict(set)
    with Path(str(drop) + ".answer_key.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            grain = CATALOG.families[row["family"]].grain
            key[row["family"]].add(tuple(row.get(k) or "" for k in GRAIN_KEYS[grain]))
    return key


def found_by_family(suspects: pa.Table) -> dict[str, set[tuple]]:
    found: dict[str, set[tuple]] = defaultdict(set)
    for r in suspects.to_pylist():
        grain = CATALOG.families[r["family"]].grain
        found[r["family"]].add(tuple(r.get(k) or "" for k in GRAIN_KEYS[grain]))
    return found


def assert_matches_key(suspects: pa.Table, key: dict[str, set[tuple]], families: set[str]) -> None:
    found = found_by_family(suspects)
    problems = []
    for fam in sorted(families):
        missed, extra = key.get(fam, set()) - found.get(fam, set()), found.get(fam, set()) - key.get(fam, set())
        if missed or extra:
            problems.append(f"{fam}: missed {sorted(missed)[:5]} ({len(missed)}), extra {sorted(extra)[:5]} ({len(extra)})")
    assert not problems, "\n".join(problems)


def implemented_contract_families() -> set[str]:
    key_families = {r.family for r in CATALOG.select()}
    return key_families & set(CATALOG.families)


def test_every_family_finds_its_answer_key_duckdb(loaded_lake, drop):
    key = answer_key(drop)
    assert key, "the generator must label injected cases"
    outcome = screen_gate_publish(loaded_lake, engine_name="duckdb", progress=False)
    assert outcome.published, outcome.reason
    families = implemented_contract_families() & set(key)
    assert {"daily_cap", "gender_restricted", "split_admission"} <= families
    assert_matches_key(outcome.suspects, key, families)


def test_rerun_publishes_same_ids_without_duplicates(loaded_lake):
    first = screen_gate_publish(loaded_lake, engine_name="duckdb", progress=False)
    second = screen_gate_publish(loaded_lake, engine_name="duckdb", progress=False)
    assert first.published and second.published
    gold = loaded_lake.read("gold/suspects")
    ids = gold.column("suspect_id").to_pylist()
    assert len(ids) == len(set(ids)), "gold/suspects holds duplicates"
    assert set(ids) == set(first.suspects.column("suspect_id").to_pylist()) \
        == set(second.suspects.column("suspect_id").to_pylist())
    assert set(gold.column("run_id").to_pylist()) == {second.run_id}


@pytest.mark.spark
def test_spark_publishes_the_same_list_as_duckdb(drop, tmp_path, spark):
    """Both engines, each on its own lake loaded from the same drop: identical ids, amounts, evidence."""
    lists, key = {}, answer_key(drop)
    for engine in ("duckdb", "spark"):
        lake = Lake(tmp_path / engine)
        load_drop(drop, lake, config.load(), progress=False)
        outcome = screen_gate_publish(lake, engine_name=engine, spark=spark, progress=False)
        assert outcome.published, outcome.reason
        gold = lake.read("gold/suspects")
        assert_matches_key(gold, key, implemented_contract_families() & set(key))
        cols = ["suspect_id", "rule_id", "fixmedins_code", "period", "amount", "evidence", "event_time"]
        lists[engine] = sorted(gold.select(cols).to_pylist(), key=lambda r: r["suspect_id"])
    assert lists["spark"] == lists["duckdb"]
