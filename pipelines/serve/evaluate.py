"""Checking claims: type their strings as ingestion does, put each in place of any lake version of its visit,
add each person's history as of the claim's time, and run the rule library's queries once over all of them.

A `Session` is one DuckDB cursor on a `WarmLake` with its own temporary tables named as the rule inputs
(`fee_list`, `mdtrt`, `psn`, ...) and the shared views over them, built once; a pass refills the tables and
runs the rules' prepared statements. The SQL itself (typing, netting, views, rules) is given by the caller
(`RuleProgram`, `Typing`): the service runs exactly the batch screening's and ingestion's SQL.

Several claims go through one pass when they are of different persons: every claim-time family looks at one
visit or at one person's records (pipelines.serve.claim_time), so claims of different persons cannot meet in
a rule, and a pass costs about the same for one claim as for fifty (the rules' fixed cost dominates).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import contract
from pipelines.serve import gates
from pipelines.serve.claim import Claim, ClaimError, Problem, dedup
from pipelines.serve.history import WarmLake, table_name

#: the rule inputs a pass fills (the knowledge base is shared, read-only)
REQUEST_INPUTS = ("fee_list", "mdtrt", "diag", "setl", "psn", "fixmedins", "inv_movement")
#: the entities a claim carries
CLAIM_PARTS = ("mdtrt", "setl", "diag", "fee_list", "psn")
_SHAPE = [n for n in contract.SUSPECT_SCHEMA.names
          if n not in ("run_id", "rule_set_fingerprint", "input_versions", "published_at")]
SHAPE_SCHEMA = pa.schema([contract.SUSPECT_SCHEMA.field(n) for n in _SHAPE])


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


@dataclass
class Outcome:
    """One claim's result: its suspects and claim time, or the error that stopped it."""
    suspects: pa.Table | None = None
    claim_time: dt.datetime | None = None
    error: ClaimError | None = None
    warm: WarmLake | None = None          # the warm lake (versions, kb release) the claim was checked on
    pass_claims: int = 0                  # the claims checked in the same pass (the access log shows it)


class PassSteps:
    """A pass, whatever runs its SQL: type the claims, refuse those with unknown references, fill the pass
    tables, run the rules, all in one transaction rolled back after it (the pass tables are empty again without
    a DELETE each). An engine's session gives `_execute`, `_insert`, `_type`, `_net`, `_places`, `_stage`,
    `_unstage`, `_run_rules`."""

    warm: WarmLake

    def check_many(self, claims: list[Claim]) -> list[Outcome]:
        """Outcomes in the order of `claims`, which must be of different persons and visits."""
        if len({c.psn_no for c in claims}) < len(claims) or len({c.mdtrt_id for c in claims}) < len(claims):
            raise ValueError("one pass checks claims of different persons and visits only")
        outcomes = [Outcome() for _ in claims]
        self._execute("BEGIN TRANSACTION")
        try:
            typed = type_claims(claims, self._type, self._net, outcomes)
            self._check_references(claims, typed, outcomes)
            ok = [i for i, o in enumerate(outcomes) if o.error is None]
            if not ok:
                return outcomes
            for i in ok:
                outcomes[i].claim_time = claim_time_of(typed[i])
            self._fill([claims[i] for i in ok], [typed[i] for i in ok], [outcomes[i].claim_time for i in ok])
            found = self._run_rules()
        finally:
            self._execute("ROLLBACK")
        for i in ok:
            outcomes[i].suspects = found.filter(pc.equal(found.column("mdtrt_id"), claims[i].mdtrt_id))
        return outcomes

    def _fill(self, claims: list[Claim], typed: list[dict], times: list[dt.datetime]) -> None:
        """The claims' keys and rows, then the rest of the pass as `pass_selects` says, over the claims' persons'
        rows staged as `r_<input>`."""
        self._insert("claim_keys", pa.table({
            "psn_no": [c.psn_no for c in claims], "mdtrt_id": [c.mdtrt_id for c in claims],
            "t": pa.array(times, pa.timestamp("us")), "psn_sent": ["psn" in t for t in typed]}))
        for s in CLAIM_PARTS:
            parts = [t[s] for t in typed if s in t]
            if parts:
                have = set(parts[0].column_names)      # every claim's table of `s` has the typing's columns
                self._insert(s, pa.concat_tables(parts).select([c for c in self.cols[s] if c in have]))
        persons = sorted({c.psn_no for c in claims})
        self._stage({s: rows.of(persons) for s, rows in self.warm.people.items()})
        try:
            for target, select in pass_selects(self.cols):
                cols = ", ".join(f'"{c}"' for c in self.cols[target])
                self._execute(f'INSERT INTO "{target}" ({cols}) {select}')
        finally:
            self._unstage()

    def _check_references(self, claims: list[Claim], typed: list[dict], outcomes: list[Outcome]) -> None:
        """A claim whose person (when `psn` is not sent) or institution the lake does not know is refused."""
        known = self.warm.people["psn"]
        places = self._places([c.fixmedins_code for c in claims])
        for c, t, o in zip(claims, typed, outcomes):
            if o.error is not None:
                continue
            problems = []
            if "psn" not in t and not known.holds(c.psn_no):
                problems.append(Problem(("psn",), "the person (mdtrt.psn_no) is not in the lake: send `psn` with "
                                                  "the claim / 参保人不在数据湖中，请随单提交psn"))
            if c.fixmedins_code not in places:
                problems.append(Problem(("mdtrt", "fixmedins_code"), "unknown institution: not a 定点医药机构 of the "
                                                                     "lake / 未知的定点医药机构编号"))
            if problems:
                o.error = ClaimError(problems)


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
        self._prepare_typing()
        for i, rule in enumerate(program.rules):
            self.cur.execute(f"PREPARE r{i} AS SELECT * FROM ({rule.sql}) q "
                             "WHERE q.mdtrt_id IN (SELECT mdtrt_id FROM claim_keys)")
        # the rules' gates: the knowledge-base codes of each code term (fixed for this warm lake), and the
        # EXISTS terms, evaluated once per pass in one statement with the pass's fee-line codes
        terms = set().union(*(gates.terms(r.gate) for r in program.rules))
        self.codes = {t: frozenset(r[0] for r in self.cur.execute(t[1]).fetchall()) for t in terms if t[0] == "codes"}
        self.exists = sorted(t for t in terms if t[0] == "exists")
        self.cur.execute("PREPARE gates AS SELECT (SELECT list(DISTINCT hilist_code) FROM fee_list)"
                         + "".join(f", {t[1]}" for t in self.exists))
        self.ran: list[int] = []      # the rules the last pass ran (the others' gates were false)

    def _execute(self, sql: str) -> None:
        self.cur.execute(sql)

    def _prepare_typing(self) -> None:
        """Ingestion's typing of each claim entity and its refund netting, prepared once over staging tables."""
        for entity in CLAIM_PARTS:
            cols = ", ".join(f'"{n}" VARCHAR' for n in contract.ENTITIES[entity].names)
            self.cur.execute(f'CREATE TEMP TABLE "raw_{entity}" ({cols}, _line BIGINT)')
            self.cur.execute(f'PREPARE "t_{entity}" AS {self.program.typing.typing(entity, f"raw_{entity}")}')
        self.cur.execute(f'CREATE TEMP TABLE typed_fee AS SELECT * FROM '
                         f'({self.program.typing.typing("fee_list", "raw_fee_list")}) LIMIT 0')
        self.cur.execute(f"PREPARE n_fee AS {self.program.typing.net('typed_fee')}")

    def _type(self, entity: str, rows: list[tuple]) -> pa.Table:
        *fields, lines = zip(*rows)
        raw = pa.table([*(pa.array(col, pa.string()) for col in fields), pa.array(lines, pa.int64())],
                       names=[*contract.ENTITIES[entity].names, "_line"])
        self._insert(f"raw_{entity}", raw)
        return self.cur.sql(f'EXECUTE "t_{entity}"').to_arrow_table()

    def _net(self, lines: pa.Table) -> pa.Table:
        self._insert("typed_fee", lines)
        return self.cur.sql("EXECUTE n_fee").to_arrow_table()

    def _insert(self, table: str, data: pa.Table) -> None:
        self.cur.register("__staging", data)
        try:
            self.cur.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM __staging')
        finally:
            self.cur.unregister("__staging")

    def _run_rules(self) -> pa.Table:
        """The suspects of the pass: every rule whose gate holds on the pass's tables (a rule whose gate is false
        returns no row, pipelines.serve.gates)."""
        codes, *exists = self.cur.execute("EXECUTE gates").fetchall()[0]
        codes = set(codes or ())
        values = {**dict(zip(self.exists, exists)), **{t: not s.isdisjoint(codes) for t, s in self.codes.items()}}
        self.ran = [i for i, r in enumerate(self.program.rules) if gates.holds(r.gate, values)]
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


def pass_selects(cols: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(pass table, SELECT) in order, once the claims' own rows and `claim_keys` are in: each person's records
    as of their claim's time `t`, the lake's version of the claims' visits left out (fee lines dated up to t,
    visits begun by t with a discharge after t not known yet, their diagnoses, the person unless the claim
    sent one), then the claims' institutions and their stock movements of the claimed items. `r_<input>`
    holds the claims' persons' rows of the input (from the warm lake's person index,
    pipelines.serve.history.PersonRows); `cols` holds each pass table's columns. Written once for both engines
    (SQLite reads it as is)."""
    def sel(source: str, prefix: str = "") -> str:
        return ", ".join(f'{prefix}"{c}"' for c in cols[source])

    others = "h.mdtrt_id NOT IN (SELECT mdtrt_id FROM claim_keys)"
    claimed = "mdtrt_id IN (SELECT mdtrt_id FROM claim_keys)"
    visit = ", ".join('CASE WHEN h.endtime <= k.t THEN h.endtime END AS "endtime"' if c == "endtime"
                      else f'h."{c}"' for c in cols["mdtrt"])
    return [
        ("fee_list", f'SELECT {sel("fee_list", "h.")} FROM r_fee_list h JOIN claim_keys k '
                     f"ON h.psn_no = k.psn_no AND h.fee_ocur_time <= k.t WHERE {others}"),
        ("mdtrt", f"SELECT {visit} FROM r_mdtrt h JOIN claim_keys k "
                  f"ON h.psn_no = k.psn_no AND h.begntime <= k.t WHERE {others}"),
        ("diag", f'SELECT {sel("diag", "h.")} FROM r_diag h WHERE {others} '
                 "AND h.mdtrt_id IN (SELECT mdtrt_id FROM mdtrt)"),
        ("psn", f'SELECT {sel("psn", "h.")} FROM r_psn h WHERE EXISTS '
                "(SELECT 1 FROM claim_keys k WHERE k.psn_no = h.psn_no AND NOT k.psn_sent)"),
        ("fixmedins", f'SELECT {sel("fixmedins")} FROM h_fixmedins WHERE fixmedins_code IN '
                      f"(SELECT fixmedins_code FROM mdtrt WHERE {claimed})"),
        ("inv_movement", f'SELECT {sel("inv_movement", "v.")} FROM h_inv_movement v WHERE '
                         "(v.fixmedins_code, v.hilist_code) IN (SELECT fixmedins_code, hilist_code "
                         f"FROM fee_list WHERE {claimed})"),
    ]


def type_claims(claims: list[Claim], type_rows: Callable[[str, list[tuple]], pa.Table],
                net_lines: Callable[[pa.Table], pa.Table], outcomes: list[Outcome]) -> list[dict[str, pa.Table]]:
    """Each claim's entities typed by ingestion's SQL (`type_rows(entity, rows)`, one query per entity for all
    claims; a row is the entity's contract fields as strings, then its `_line`); a claim with a bad value gets
    a ClaimError naming every bad field. Identical lines or diagnoses count once; refunds are netted as in
    silver/fee_list_net (`net_lines`)."""
    typed: list[dict[str, pa.Table]] = [{} for _ in claims]
    problems: list[list[Problem]] = [[] for _ in claims]
    for entity in CLAIM_PARTS:
        owners = [(ci, ri) for ci, c in enumerate(claims) for ri, _ in enumerate(c.rows.get(entity, ()))]
        if not owners:
            continue
        names = contract.ENTITIES[entity].names
        raw = [(*map(claims[ci].rows[entity][ri].get, names), line) for line, (ci, ri) in enumerate(owners)]
        out = type_rows(entity, raw)
        lines = out.column("_line").to_numpy()
        if len(lines) > 1 and not (lines[1:] > lines[:-1]).all():
            out = out.take(np.argsort(lines, kind="stable"))
            lines = out.column("_line").to_numpy()
        lines = lines.tolist()
        for line, errs in zip(lines, out.column("_errs").to_pylist()):
            ci, ri = owners[line]
            for e in errs or ():
                if e is not None:
                    problems[ci].append(Problem(claims[ci].loc(entity, ri, e["field"]), e["msg"]))
        for i, found in out_of_range(entity, out):
            ci, ri = owners[lines[i]]
            problems[ci] += [Problem(claims[ci].loc(entity, ri, f), msg) for f, msg in found]
        starts = [i for i, (ci, ri) in enumerate(owners) if ri == 0]
        for k, start in enumerate(starts):
            end = starts[k + 1] if k + 1 < len(starts) else len(owners)
            typed[owners[start][0]][entity] = out.slice(start, end - start)
    for ci, c in enumerate(claims):
        problems[ci] += c.duplicate_problems(typed[ci])
        if problems[ci]:
            outcomes[ci].error = ClaimError(problems[ci])
            continue
        for entity in ("fee_list", "diag"):
            if entity in typed[ci]:
                typed[ci][entity] = dedup(entity, typed[ci][entity])
    # refunds netted for every claim's lines at once: a refund only meets lines of its own visit
    idx = [i for i, t in enumerate(typed) if "fee_list" in t and outcomes[i].error is None]
    if idx:
        net = net_lines(pa.concat_tables([typed[i]["fee_list"] for i in idx]))
    for i in idx:
        typed[i]["fee_list"] = net.filter(pc.equal(net.column("mdtrt_id"), typed[i]["mdtrt"].column("mdtrt_id")[0]))
    return typed


def out_of_range(entity: str, out: pa.Table) -> list[tuple[int, list[tuple[str, str]]]]:
    """(row index, [(field, message)]) of the typed rows with a time outside `contract.time_bounds`, as the
    silver suite refuses them in a load: a fee time of 9999 would make the person's whole history the claim's
    past."""
    found: dict[int, list] = {}
    for f in contract.ENTITIES[entity].fields:
        if f.type not in (contract.TS, contract.DATE) or f.name not in out.column_names:
            continue
        low, high = contract.time_bounds(f.name)
        for i, v in enumerate(out.column(f.name).to_pylist()):
            v = v if v is None or isinstance(v, dt.datetime) else dt.datetime.combine(v, dt.time())
            if v is not None and not low <= v <= high:
                found.setdefault(i, []).append((f.name, f"{f.name}: {v:%Y-%m-%d} outside {low:%Y-%m-%d}.."
                                                f"{high:%Y-%m-%d} / {f.label or f.name}超出范围"))
    return sorted(found.items())


def claim_time_of(typed: dict[str, pa.Table]) -> dt.datetime:
    """The claim time: the latest of settlement, discharge, admission and fee times the claim carries."""
    times = []
    for entity, cols in (("setl", ("setl_time",)), ("mdtrt", ("begntime", "endtime")), ("fee_list", ("fee_ocur_time",))):
        if entity in typed:
            for c in cols:
                times += [v for v in typed[entity].column(c).to_pylist() if v is not None]
    return max(times)
