"""A pass: the steps that check claims together, whatever engine runs their SQL (DuckDB, `evaluate.Session`, or
SQLite, `lite.LiteSession`).

A pass types the claims' strings with ingestion's SQL into staging tables, refuses the claims with a bad
value, a key sent twice with different values or an unknown person or institution, nets refunds, puts each
claim in place of the lake's version of its visit, adds each person's history as of the claim's time and runs
the rule library's queries once over all of them; all in one transaction rolled back after it, so the tables
are empty again without a DELETE each. The claims' rows stay in the engine from typing to rules: only the few
values a decision needs (errors, out-of-range times, repeated keys, claim times) come back to Python
(decision 44).

Several claims go through one pass when they are of different persons: every claim-time family looks at one
visit or at one person's records (pipelines.serve.claim_time), so claims of different persons cannot meet in
a rule, and a pass costs about the same for one claim as for fifty (the rules' fixed cost dominates).
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from pipelines import contract
from pipelines.serve.claim import Claim, ClaimError, Problem, repeated
from pipelines.serve.history import WarmLake

#: the rule inputs a pass fills (the knowledge base is shared, read-only)
REQUEST_INPUTS = ("fee_list", "mdtrt", "diag", "setl", "psn", "fixmedins", "inv_movement")
#: the entities a claim carries
CLAIM_PARTS = ("mdtrt", "setl", "diag", "fee_list", "psn")
#: the entities whose identical copies count once and whose key may not come twice with different values
KEYED_PARTS = ("fee_list", "diag")
_SHAPE = [n for n in contract.SUSPECT_SCHEMA.names
          if n not in ("run_id", "rule_set_fingerprint", "input_versions", "published_at")]
SHAPE_SCHEMA = pa.schema([contract.SUSPECT_SCHEMA.field(n) for n in _SHAPE])
#: (entity, column) whose latest value is the claim time: settlement, admission, discharge, (netted) fee times
CLAIM_TIMES = (("setl", "setl_time"), ("mdtrt", "begntime"), ("mdtrt", "endtime"), ("fee_list", "fee_ocur_time"))


@dataclass
class Outcome:
    """One claim's result: its suspects and claim time, or the error that stopped it."""
    suspects: pa.Table | None = None
    claim_time: dt.datetime | None = None
    error: ClaimError | None = None
    warm: WarmLake | None = None          # the warm lake (versions, kb release) the claim was checked on
    pass_claims: int = 0                  # the claims checked in the same pass (the access log shows it)


#: the staging table of the claims' netted fee lines
NETTED = "net_fee"


def staged(entity: str) -> str:
    """The staging table of an entity's typed rows."""
    return f"typed_{entity}"


def claim_rows(entity: str) -> str:
    """The staging table a claim's rows of `entity` enter the pass from (fee lines once netted)."""
    return NETTED if entity == "fee_list" else staged(entity)


class PassSteps:
    """A pass on an engine's session, which gives: `_execute(sql)`, `_select(sql) -> (names, rows)`, `_put(table,
    names, rows)` (insert tuples), `_type(entity)` (ingestion's typing of `raw_<entity>` into `typed_<entity>`),
    `_net()` (refund netting of `typed_fee_list` into `net_fee`), `_places(codes)`, `_stage(people)` /
    `_unstage()` (the persons' history as `r_<input>`), `_run_rules()`; and `cols` (each pass table's columns)
    and `typed_names` (each staging table's columns, by table name)."""

    warm: WarmLake
    cols: dict[str, list[str]]
    typed_names: dict[str, list[str]]

    def check_many(self, claims: list[Claim]) -> list[Outcome]:
        """Outcomes in the order of `claims`, which must be of different persons and visits."""
        if len({c.psn_no for c in claims}) < len(claims) or len({c.mdtrt_id for c in claims}) < len(claims):
            raise ValueError("one pass checks claims of different persons and visits only")
        outcomes = [Outcome() for _ in claims]
        self._execute("BEGIN TRANSACTION")
        try:
            owners = self._type_claims(claims, outcomes)
            self._check_references(claims, outcomes)
            ok = [i for i, o in enumerate(outcomes) if o.error is None]
            if not ok:
                return outcomes
            self._drop_refused(owners, outcomes)
            self._fill(claims, ok, owners, outcomes)
            found = self._run_rules()
        finally:
            self._execute("ROLLBACK")
        for i in ok:
            outcomes[i].suspects = found.filter(pc.equal(found.column("mdtrt_id"), claims[i].mdtrt_id))
        return outcomes

    def _type_claims(self, claims: list[Claim], outcomes: list[Outcome]) -> dict[str, list[tuple[int, int]]]:
        """Each entity's raw rows of all claims typed by ingestion's SQL in one statement; a claim with a bad
        value gets a ClaimError naming every bad field. Identical lines or diagnoses are kept once. Returns, per
        entity, the (claim, row) of each `_line`."""
        problems: list[list[Problem]] = [[] for _ in claims]
        later: list[list[Problem]] = [[] for _ in claims]         # repeated keys, after the values' problems
        owners = {}
        for entity in CLAIM_PARTS:
            own = [(ci, ri) for ci, c in enumerate(claims) for ri in range(len(c.rows.get(entity, ())))]
            if not own:
                continue
            owners[entity] = own
            names = contract.ENTITIES[entity].names
            self._put(f"raw_{entity}", [*names, "_line"],
                      [(*map(claims[ci].rows[entity][ri].get, names), line) for line, (ci, ri) in enumerate(own)])
            self._type(entity)
            table = staged(entity)
            bad = self._select(f'SELECT _line, _errs FROM "{table}" WHERE _err <> \'\' ORDER BY _line')[1]
            for line, errs in bad:
                ci, ri = own[line]
                for e in (json.loads(errs) if isinstance(errs, str) else errs) or ():
                    if e is not None:
                        problems[ci].append(Problem(claims[ci].loc(entity, ri, e["field"]), e["msg"]))
            for line, name, msg in self._out_of_range(entity):
                ci, ri = own[line]
                problems[ci].append(Problem(claims[ci].loc(entity, ri, name), msg))
            if entity in KEYED_PARTS:
                clashes, copies = self._repeated(entity, own)
                for line, msg in clashes:
                    ci, ri = own[line]
                    later[ci].append(Problem(claims[ci].loc(entity, ri, contract.ENTITIES[entity].key[-1]), msg))
                self._delete(table, copies)
        for ci, o in enumerate(outcomes):
            if problems[ci] or later[ci]:
                o.error = ClaimError(problems[ci] + later[ci])
        return owners

    def _out_of_range(self, entity: str) -> list[tuple[int, str, str]]:
        """(_line, field, message) of the typed times outside `contract.time_bounds`, as the silver suite refuses
        them in a load: a fee time of 9999 would make the person's whole history the claim's past."""
        found = []
        for f in contract.ENTITIES[entity].fields:
            if f.type not in (contract.TS, contract.DATE) or f.name not in self.typed_names[staged(entity)]:
                continue
            low, high = contract.time_bounds(f.name)
            text = (lambda t: t.date().isoformat()) if f.type == contract.DATE else (lambda t: t.isoformat(" "))
            sql = (f'SELECT _line, "{f.name}" FROM "{staged(entity)}" '
                   f"WHERE \"{f.name}\" < '{text(low)}' OR \"{f.name}\" > '{text(high)}'")
            found += [(line, f.name, f"{f.name}: {str(v)[:10]} outside {low:%Y-%m-%d}..{high:%Y-%m-%d} / "
                                     f"{f.label or f.name}超出范围") for line, v in self._select(sql)[1]]
        return sorted(found, key=lambda x: x[0])

    def _repeated(self, entity: str, owners: list[tuple[int, int]]) -> tuple[list[tuple[int, str]], list[int]]:
        """The rows whose key comes more than once in the pass, judged per claim (pipelines.serve.claim.repeated)."""
        keys = ", ".join(f'"{k}"' for k in contract.ENTITIES[entity].key)
        on = " AND ".join(f't."{k}" IS NOT DISTINCT FROM d."{k}"' for k in contract.ENTITIES[entity].key)
        table = staged(entity)
        names, rows = self._select(f'SELECT t.* FROM "{table}" t JOIN (SELECT {keys} FROM "{table}" GROUP BY {keys} '
                                   f"HAVING COUNT(*) > 1) d ON {on} ORDER BY t._line")
        return repeated(entity, names, rows, lambda line: owners[line][0]) if rows else ([], [])

    def _delete(self, table: str, lines: list[int]) -> None:
        if lines:
            self._execute(f'DELETE FROM "{table}" WHERE _line IN ({", ".join(str(int(x)) for x in lines)})')

    def _drop_refused(self, owners: dict[str, list[tuple[int, int]]], outcomes: list[Outcome]) -> None:
        """The typed rows of the claims refused, out of the staging tables."""
        for entity, own in owners.items():
            self._delete(staged(entity), [line for line, (ci, _) in enumerate(own) if outcomes[ci].error is not None])

    def _check_references(self, claims: list[Claim], outcomes: list[Outcome]) -> None:
        """A claim whose person (when `psn` is not sent) or institution the lake does not know is refused."""
        known = self.warm.people["psn"]
        places = self._places([c.fixmedins_code for c in claims])
        for c, o in zip(claims, outcomes):
            if o.error is not None:
                continue
            problems = []
            if "psn" not in c.rows and not known.holds(c.psn_no):
                problems.append(Problem(("psn",), "the person (mdtrt.psn_no) is not in the lake: send `psn` with "
                                                  "the claim / 参保人不在数据湖中，请随单提交psn"))
            if c.fixmedins_code not in places:
                problems.append(Problem(("mdtrt", "fixmedins_code"), "unknown institution: not a 定点医药机构 of the "
                                                                     "lake / 未知的定点医药机构编号"))
            if problems:
                o.error = ClaimError(problems)

    def _fill(self, claims: list[Claim], ok: list[int], owners: dict, outcomes: list[Outcome]) -> None:
        """The accepted claims' rows (fee lines netted), their keys and claim times, then the rest of the pass as
        `pass_selects` says, over the claims' persons' rows staged as `r_<input>`."""
        if "fee_list" in owners:
            self._net()
        for s in CLAIM_PARTS:
            if s in owners:
                source = claim_rows(s)
                cols = ", ".join(f'"{c}"' for c in self.cols[s] if c in self.typed_names[source])
                self._execute(f'INSERT INTO "{s}" ({cols}) SELECT {cols} FROM "{source}"')
        times = dict(self._select(claim_times_sql(set(owners)))[1])
        visit_of = {ci: line for line, (ci, _) in enumerate(owners["mdtrt"])}
        for i in ok:
            t = times[visit_of[i]]
            outcomes[i].claim_time = t if isinstance(t, dt.datetime) else dt.datetime.fromisoformat(t)
        self._put("claim_keys", ["psn_no", "mdtrt_id", "t", "psn_sent"],
                  [(claims[i].psn_no, claims[i].mdtrt_id, times[visit_of[i]], "psn" in claims[i].rows) for i in ok])
        persons = sorted({claims[i].psn_no for i in ok})
        self._stage({s: rows.of(persons) for s, rows in self.warm.people.items()})
        try:
            for target, select in pass_selects(self.cols):
                cols = ", ".join(f'"{c}"' for c in self.cols[target])
                self._execute(f'INSERT INTO "{target}" ({cols}) {select}')
        finally:
            self._unstage()


def claim_times_sql(present: set[str]) -> str:
    """(_line of the visit, claim time) of each claim in the staging tables: the latest of `CLAIM_TIMES`."""
    times = " UNION ALL ".join(f'SELECT mdtrt_id, "{c}" AS t FROM "{claim_rows(e)}"'
                               for e, c in CLAIM_TIMES if e in present)
    return (f"SELECT m._line, MAX(x.t) FROM typed_mdtrt m JOIN ({times}) x ON x.mdtrt_id = m.mdtrt_id "
            "GROUP BY m._line")


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
