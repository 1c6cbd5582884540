"""The rule program a service runs (`RuleProgram`: the batch screening's rule SQL, views and ingestion's
typing, given by the caller) and the DuckDB session that checks claims with it (`serve.engine: duckdb`).

A `Session` is one DuckDB cursor on a `WarmLake` with its own temporary tables named as the rule inputs
(`fee_list`, `mdtrt`, `psn`, ...), the staging tables of typing and the shared views over them, built once; a
pass (pipelines.serve.passes) refills the tables and runs the rules' prepared statements.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pyarrow as pa

from pipelines import contract
from pipelines.serve import gates
from pipelines.serve.history import WarmLake, table_name
from pipelines.serve.passes import CLAIM_PARTS, NETTED, REQUEST_INPUTS, SHAPE_SCHEMA, PassSteps, staged


@dataclass(frozen=True)
class RuleSQL:
    rule_id: str
    family: str
    sql: str          # DuckDB SQL returning the suspect shape (pipelines.screen.sql.rule_query, transpiled)
    gate: object = None   # what must hold on the pass for the rule to return a row (pipelines.serve.gates)


@dataclass(frozen=True)
class Typing:
    """Ingestion's SQL: `typing(entity, source)` types a table of strings into silver columns + `_errs` (one
    {field, msg} per failing field, `nodes.typing_sql(per_field=True)`);
    `net(source)` nets refunds of typed fee lines."""
    typing: Callable[[str, str], str]
    net: Callable[[str], str]


@dataclass(frozen=True)
class RuleProgram:
    rules: tuple[RuleSQL, ...]
    views: tuple[tuple[str, str], ...]     # (view name, DuckDB SQL), in dependency order
    fingerprint: str
    typing: Typing
    columns: dict[str, set[str]] = field(default_factory=dict)   # input -> column names the rules read


class Session(PassSteps):
    """One DuckDB cursor with the pass tables, the shared views and the rules prepared."""

    def __init__(self, warm: WarmLake, program: RuleProgram):
        self.warm, self.program = warm, program
        self.cur = warm.cursor()
        self.cols = {s: warm.columns[s] for s in REQUEST_INPUTS}
        for s in REQUEST_INPUTS:
            self.cur.execute(f'CREATE TEMP TABLE "{s}" AS SELECT {self._sel(s)} FROM {table_name(s)} LIMIT 0')
        self.cur.execute("CREATE TEMP TABLE claim_keys (psn_no VARCHAR, mdtrt_id VARCHAR, t TIMESTAMP, psn_sent BOOLEAN)")
        for name, sql in program.views:
            self.cur.execute(f'CREATE TEMP VIEW "{name}" AS {sql}')
        self.typed_names: dict[str, list[str]] = {}
        self._prepare_typing()
        for i, rule in enumerate(program.rules):
            self.cur.execute(f"PREPARE r{i} AS SELECT * FROM ({rule.sql}) q "
                             "WHERE q.mdtrt_id IN (SELECT mdtrt_id FROM claim_keys)")
        # the rules' gates: the knowledge-base codes of each code term (fixed for this warm lake), and the
        # EXISTS terms, evaluated once per pass in one statement with the pass's fee-line codes
        self.gates = gates.PassGates(program.rules, lambda sql: [r[0] for r in self.cur.execute(sql).fetchall()])
        self.cur.execute("PREPARE gates AS SELECT (SELECT list(DISTINCT hilist_code) FROM fee_list)"
                         + "".join(f", {t[1]}" for t in self.gates.exists))
        self.ran: list[int] = []      # the rules the last pass ran (the others' gates were false)

    def _execute(self, sql: str) -> None:
        self.cur.execute(sql)

    def _prepare_typing(self) -> None:
        """Ingestion's typing of each claim entity into its staging table, and refund netting, prepared once."""
        for entity in CLAIM_PARTS:
            cols = ", ".join(f'"{n}" VARCHAR' for n in contract.ENTITIES[entity].names)
            self.cur.execute(f'CREATE TEMP TABLE "raw_{entity}" ({cols}, _line BIGINT)')
            typing = self.program.typing.typing(entity, f"raw_{entity}")
            self._stage_table(staged(entity), typing)
            self.cur.execute(f'PREPARE "t_{entity}" AS INSERT INTO "{staged(entity)}" SELECT * FROM ({typing})')
        net = self.program.typing.net(staged("fee_list"))
        self._stage_table(NETTED, net)
        self.cur.execute(f'PREPARE n_fee AS INSERT INTO "{NETTED}" SELECT * FROM ({net})')

    def _stage_table(self, name: str, select: str) -> None:
        self.cur.execute(f'CREATE TEMP TABLE "{name}" AS SELECT * FROM ({select}) LIMIT 0')
        self.typed_names[name] = [d[0] for d in self.cur.execute(f'SELECT * FROM "{name}" LIMIT 0').description]

    def _type(self, entity: str) -> None:
        self.cur.execute(f'EXECUTE "t_{entity}"')

    def _net(self) -> None:
        self.cur.execute("EXECUTE n_fee")

    def _select(self, sql: str) -> tuple[list[str], list[tuple]]:
        self.cur.execute(sql)
        return [d[0] for d in self.cur.description], self.cur.fetchall()

    def _put(self, table: str, names: list[str], rows: list[tuple]) -> None:
        data = pa.table([pa.array(col) for col in zip(*rows)], names=names)
        self.cur.register("__staging", data)
        try:
            self.cur.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM __staging')
        finally:
            self.cur.unregister("__staging")

    def _run_rules(self) -> pa.Table:
        """The suspects of the pass: every rule whose gate holds on the pass's tables (a rule whose gate is false
        returns no row, pipelines.serve.gates)."""
        codes, *exists = self.cur.execute("EXECUTE gates").fetchall()[0]
        self.ran = self.gates.ran(set(codes or ()), exists)
        parts = [self.cur.sql(f"EXECUTE r{i}").to_arrow_table() for i in self.ran]
        parts = [p.cast(SHAPE_SCHEMA) for p in parts if p.num_rows]
        return pa.concat_tables(parts) if parts else SHAPE_SCHEMA.empty_table()

    def _places(self, codes: list[str]) -> set[str]:
        return {r[0] for r in self.cur.execute(
            "SELECT fixmedins_code FROM h_fixmedins WHERE fixmedins_code IN (SELECT unnest($1))", [codes]).fetchall()}

    def _stage(self, people: dict[str, pa.Table]) -> None:
        for source, rows in people.items():
            self.cur.register(f"r_{source}", rows)

    def _unstage(self) -> None:
        for source in self.warm.people:
            self.cur.unregister(f"r_{source}")

    def _sel(self, source: str, prefix: str = "") -> str:
        return ", ".join(f'{prefix}"{c}"' for c in self.cols[source])

    def close(self) -> None:
        self.cur.close()
