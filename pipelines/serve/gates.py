"""Which rules a pass can skip: each rule's *gate*, a condition on the pass's tables derived from the rule's own
query, that holds whenever the rule can return a row. Pure: SQL in, SQL out (sqlglot, DuckDB dialect).

A rule returns a row only if every relation its rows are built from is non-empty. Walking the rule's query,
a SELECT's *required* sources are its FROM source and its INNER, CROSS and SEMI joins (not LEFT/ANTI-joined
ones; a SELECT with a RIGHT or FULL join, or aggregates without GROUP BY, requires nothing). For the base
tables among them (the rule inputs and views a pass fills, and the knowledge base) the gate is
`EXISTS (SELECT 1 FROM <those tables> WHERE <the SELECT's conjuncts that name only them>)`, one EXISTS per
group of tables linked by a conjunct; a required CTE or subquery adds its own gate; a UNION's gate is the OR of
its branches'. Conjuncts are taken only from WHERE and from the ON of required joins, and only when every
column in them is qualified by a required base table's alias and they hold no subquery, aggregate, window or
volatile function: a conjunct left out only widens the gate. So a false gate proves the rule returns nothing
on the pass, and skipping it never changes an answer (tests/serve/test_gates.py checks both the derivation
and, on the sample district, that gated and ungated passes answer alike).

Example: `FROM fee f JOIN kb_hilist k ON k.hilist_code = f.hilist_code WHERE f.is_fund AND
k.gend_lmt IS NOT NULL` gates on `EXISTS (SELECT 1 FROM fee AS f, kb_hilist AS k WHERE k.hilist_code =
f.hilist_code AND f.is_fund AND NOT k.gend_lmt IS NULL)`: a claim and history with none of the knowledge
base's gender-restricted codes do not run the rule.
"""
from __future__ import annotations

import sqlglot
from sqlglot import exp

#: the knowledge-base table of list items and the pass relations whose rows are fee lines (hilist_code)
KB_CODES = "kb_hilist"
FEE_LINES = ("fee", "fee_list")
#: functions whose value is not fixed by their arguments (a conjunct using one is never copied into a gate)
_VOLATILE = {"random", "uuid", "gen_random_uuid", "now", "current_timestamp", "current_date", "get_current_time",
             "nextval", "setseed"}


def rule_gate(sql: str, base_tables: set[str]):
    """The gate of a rule's DuckDB query over `base_tables`: a term (`terms`) or `("all" | "any", (gate, ...))`;
    None when nothing can be proved (the rule always runs)."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    return _gate(tree, {}, {t.lower() for t in base_tables})


def terms(gate) -> set[tuple[str, str]]:
    """The terms a gate is made of, each evaluated once per pass for all rules: `("exists", sql)` (an EXISTS
    over the pass's tables) or `("codes", sql)` (a query of kb_hilist codes; true when a fee line of the pass
    has one of them)."""
    if gate is None:
        return set()
    if gate[0] in ("exists", "codes"):
        return {gate}
    return set().union(*(terms(g) for g in gate[1]))


def holds(gate, values: dict) -> bool:
    """Whether a gate is true given each term's value (a rule without a gate always runs)."""
    if gate is None:
        return True
    if gate[0] in ("exists", "codes"):
        return bool(values[gate])
    parts = (holds(g, values) for g in gate[1])
    return all(parts) if gate[0] == "all" else any(parts)


class PassGates:
    """The gates of a session's rules: each code term's knowledge-base codes (`codes_of(sql)`, fixed for a warm
    lake) and the EXISTS terms a pass evaluates (`exists`, in this order). `ran(codes, values)` gives the rules
    to run on a pass whose fee lines carry the list codes `codes`, the EXISTS terms having the truth `values`."""

    def __init__(self, rules, codes_of):
        self.gates = [r.gate for r in rules]
        found = set().union(*(terms(g) for g in self.gates))
        self.codes = {t: frozenset(codes_of(t[1])) for t in found if t[0] == "codes"}
        self.exists = sorted(t for t in found if t[0] == "exists")

    def ran(self, codes: set, values) -> list[int]:
        truth = {**dict(zip(self.exists, values)), **{t: not s.isdisjoint(codes) for t, s in self.codes.items()}}
        return [i for i, g in enumerate(self.gates) if holds(g, truth)]


def _gate(node: exp.Expression, ctes: dict[str, exp.Expression], bases: set[str]):
    ctes = {**ctes, **_ctes_of(node)}
    if isinstance(node, exp.Subquery):
        return _gate(node.this, ctes, bases)
    if isinstance(node, exp.Union):
        left, right = _gate(node.left, ctes, bases), _gate(node.right, ctes, bases)
        return ("any", (left, right)) if left is not None and right is not None else None
    if isinstance(node, exp.Intersect):
        return _all([g for g in (_gate(node.left, ctes, bases), _gate(node.right, ctes, bases)) if g is not None])
    if isinstance(node, exp.Except):
        return _gate(node.left, ctes, bases)
    if isinstance(node, exp.Select):
        return _select_gate(node, ctes, bases)
    return None


def _ctes_of(node: exp.Expression) -> dict[str, exp.Expression]:
    with_ = _arg(node, "with") if isinstance(node, (exp.Select, exp.Union, exp.Intersect, exp.Except)) else None
    if with_ is None or with_.args.get("recursive"):
        return {}
    return {cte.alias_or_name.lower(): cte.this for cte in with_.expressions}


def _select_gate(sel: exp.Select, ctes: dict, bases: set[str]):
    if _aggregates_without_groups(sel):
        return None
    joins = sel.args.get("joins") or []
    if any(j.side in ("RIGHT", "FULL") or j.kind == "POSITIONAL" for j in joins) or _arg(sel, "from") is None:
        return None
    required = [_arg(sel, "from").this]
    conjuncts = _conjuncts(sel.args.get("where").this) if sel.args.get("where") else []
    for j in joins:
        if j.side in ("LEFT",) or j.kind in ("ANTI",) or (j.kind == "OUTER"):
            continue
        required.append(j.this)
        if j.args.get("on") is not None:
            conjuncts += _conjuncts(j.args["on"])
    gates, tables = [], {}           # alias -> base table expression
    for src in required:
        if isinstance(src, exp.Table) and not src.args.get("db"):
            name = src.name.lower()
            if name in ctes:
                g = _gate(ctes[name], {k: v for k, v in ctes.items() if k != name}, bases)
                if g is not None:
                    gates.append(g)
            elif name in bases:
                tables[src.alias_or_name.lower()] = src
        elif isinstance(src, exp.Subquery):
            g = _gate(src.this, ctes, bases)
            if g is not None:
                gates.append(g)
    gates += _exists_gates(tables, conjuncts)
    return _all(gates)


def _arg(node: exp.Expression, name: str):
    """An argument of a node (`from`, `with`: sqlglot 30 names them `from_`, `with_`)."""
    value = node.args.get(name)
    return value if value is not None else node.args.get(f"{name}_")


def _aggregates_without_groups(sel: exp.Select) -> bool:
    if sel.args.get("having") is not None and sel.args.get("group") is None:
        return True
    group = sel.args.get("group")
    if group is not None:
        return any(isinstance(g, (exp.Cube, exp.Rollup, exp.GroupingSets)) for g in group.walk())
    for proj in sel.expressions:
        for agg in proj.find_all(exp.AggFunc):
            if agg.find_ancestor(exp.Window) is None and agg.find_ancestor(exp.Subquery, exp.Select) is sel:
                return True
    return False


def _conjuncts(cond: exp.Expression) -> list[exp.Expression]:
    cond = cond.unnest() if isinstance(cond, exp.Paren) else cond
    if isinstance(cond, exp.And):
        return _conjuncts(cond.left) + _conjuncts(cond.right)
    return [cond]


def _aliases_in(cond: exp.Expression, tables: dict) -> set[str] | None:
    """The required base tables a conjunct names, or None when it may not be copied into a gate."""
    if cond.find(exp.Subquery, exp.Select, exp.AggFunc, exp.Window, exp.Exists) is not None:
        return None
    for f in cond.find_all(exp.Anonymous, exp.Func):
        name = (f.name if isinstance(f, exp.Anonymous) else f.sql_name()).lower()
        if name in _VOLATILE or isinstance(f, (exp.Rand, exp.CurrentDate, exp.CurrentTimestamp)):
            return None
    names = set()
    for col in cond.find_all(exp.Column):
        table = col.table.lower()
        if not table or table not in tables or col.args.get("db"):
            return None
        names.add(table)
    return names


def _exists_gates(tables: dict, conjuncts: list[exp.Expression]) -> list[tuple[str, str]]:
    """One term per group of required base tables linked by copyable conjuncts: ("codes", the knowledge-base
    query) when the group joins fee lines to kb_hilist on hilist_code, else ("exists", an EXISTS)."""
    if not tables:
        return []
    kept = [(c, a) for c in conjuncts if (a := _aliases_in(c, tables))]
    groups: list[set[str]] = [{t} for t in tables]
    for _, names in kept:
        touched = [g for g in groups if g & names]
        merged = set().union(*touched)
        groups = [g for g in groups if not g & names] + [merged]
    out = []
    for g in groups:
        conds = [c for c, names in kept if names <= g]
        if not conds:           # a base table with no condition: non-empty unless the pass is (no proof)
            continue
        codes = _code_term(g, tables, kept)
        if codes is not None:
            out.append(("codes", codes))
            continue
        sub = exp.select("1").from_(tables[sorted(g)[0]].copy())
        for alias in sorted(g)[1:]:
            sub = sub.join(tables[alias].copy(), join_type="CROSS")
        sub = sub.where(exp.and_(*[c.copy() for c in conds]) if len(conds) > 1 else conds[0].copy())
        out.append(("exists", exp.Exists(this=sub).sql(dialect="duckdb", comments=False)))
    return out


def _code_term(group: set[str], tables: dict, kept: list) -> str | None:
    """For a group that joins a fee line to kb_hilist by `k.hilist_code = f.hilist_code`: the query of the
    knowledge-base codes meeting the group's conditions on k alone. A row of the group needs a fee line of
    the pass with one of these codes (the other conditions are left out, which only widens the gate)."""
    kb = [a for a in group if tables[a].name.lower() == KB_CODES]
    fee = {a for a in group if tables[a].name.lower() in FEE_LINES}
    for k in kb:
        for c, names in kept:
            if isinstance(c, exp.EQ) and names == {k} | (names & fee) and len(names) == 2 and all(
                    isinstance(side, exp.Column) and side.name.lower() == "hilist_code" for side in (c.left, c.right)):
                own = [x.copy() for x, n in kept if n == {k}]
                sub = exp.select(exp.column("hilist_code", table=k)).distinct().from_(tables[k].copy())
                if own:
                    sub = sub.where(exp.and_(*own) if len(own) > 1 else own[0])
                return sub.sql(dialect="duckdb", comments=False)
    return None


def _all(parts: list):
    """The conjunction of gates, each once (None when there is none)."""
    unique = list(dict.fromkeys(parts))
    if not unique:
        return None
    return unique[0] if len(unique) == 1 else ("all", tuple(unique))
