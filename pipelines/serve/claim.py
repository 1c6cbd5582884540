"""The submitted claim: its JSON schema (built from the contract's fields), structural checks and the rows
handed to ingestion's typing. Pure: no I/O.

Values come as a hospital system sends them: strings as in a CSV drop (JSON numbers are accepted and read as
their text, as in a JSONL drop); typing, codes and formats are then checked by ingestion's own SQL, so a
claim is read exactly as a drop's row would be. The lines, diagnoses and settlement may leave out
`mdtrt_id`, `psn_no` and `fixmedins_code`: they are the visit's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Optional

from pydantic import BeforeValidator, ConfigDict, Field, create_model

from pipelines import contract

#: keys a child record inherits from the visit when it leaves them out
INHERITED = ("mdtrt_id", "psn_no", "fixmedins_code")
#: submitted part -> entity, and whether it is a list
PARTS = {"mdtrt": ("mdtrt", False), "setl": ("setl", False), "psn": ("psn", False),
         "diag": ("diag", True), "fee_list": ("fee_list", True)}


#: the longest value a claim may send (the national interface's longest text field is 1,000 characters)
MAX_TEXT = 1000


def _as_text(v: Any) -> Any:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return repr(v) if isinstance(v, float) else str(v)
    if v is None:
        return v
    if not isinstance(v, str):
        raise ValueError(f"expected a string (or a number), got {type(v).__name__} / 应为字符串")
    if len(v) > MAX_TEXT:
        raise ValueError(f"longer than {MAX_TEXT} characters ({len(v)}) / 超过{MAX_TEXT}个字符")
    try:
        v.encode("utf-8")
    except UnicodeEncodeError as exc:      # JSON may escape a lone surrogate ("\ud800"): no character
        raise ValueError(f"not valid Unicode text (a lone surrogate at position {exc.start}) / "
                         "含有无效的Unicode字符") from None
    return v


Value = Annotated[Optional[str], BeforeValidator(_as_text)]


def _model(entity: str, inherit: bool):
    ent = contract.ENTITIES[entity]
    fields = {}
    for f in ent.fields:
        required = f.required and not (inherit and f.name in INHERITED)
        desc = f"{f.label} ({f.type})" + (f"; codes {', '.join(f.codes)}" if f.codes else "")
        fields[f.name] = (Value, Field(... if required else None, description=desc))
    return create_model(f"{entity.capitalize()}In", __config__=ConfigDict(extra="forbid"), **fields)


MdtrtIn = _model("mdtrt", False)
SetlIn = _model("setl", True)
PsnIn = _model("psn", False)
DiagIn = _model("diag", True)
FeeIn = _model("fee_list", True)


def claim_model(max_lines: int, max_diag: int = 200):
    """The body of POST /v1/check: one visit with at most `max_lines` fee lines."""
    return create_model(
        "ClaimIn", __config__=ConfigDict(extra="forbid"),
        mdtrt=(MdtrtIn, Field(..., description="就诊 (contract §2 mdtrt)")),
        setl=(Optional[SetlIn], Field(None, description="结算; without it self_pay_ratio is not decided")),
        diag=(list[DiagIn], Field(default_factory=list, max_length=max_diag, description="诊断")),
        fee_list=(list[FeeIn], Field(default_factory=list, max_length=max_lines, description="费用明细")),
        psn=(Optional[PsnIn], Field(None, description="参保人; looked up in the lake by psn_no when absent")),
    )


@dataclass(frozen=True)
class Problem:
    loc: tuple
    msg: str

    def as_dict(self) -> dict:
        return {"loc": ["body", *self.loc], "field": ".".join(str(x) for x in self.loc), "msg": self.msg}


class ClaimError(ValueError):
    """A claim that cannot be checked: every problem names its field (answered 422)."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(f"{'.'.join(map(str, p.loc))}: {p.msg}" for p in problems))
        self.problems = problems


@dataclass
class Claim:
    mdtrt_id: str
    psn_no: str
    fixmedins_code: str
    rows: dict[str, list[dict]] = field(default_factory=dict)    # entity -> raw rows (strings)

    def loc(self, entity: str, index: int, name: str) -> tuple:
        return (entity, index, name) if PARTS[entity][1] else (entity, name)


def repeated(entity: str, names: list[str], rows: list[tuple], claim_of) -> tuple[list[tuple[int, str]], list[int]]:
    """Rows of one entity sharing a key (`rows`: typed, with the columns `names` and `_line`, in `_line` order;
    `claim_of(line)` the claim of a row): (_line, message) of each row whose values differ from the first row of
    its claim and key (sent twice with different values), and the _line of each identical copy of an earlier
    row (counted once, as in a drop)."""
    key_at = [names.index(k) for k in contract.ENTITIES[entity].key]
    data_at = [i for i, n in enumerate(names) if not n.startswith("_") and n not in ("period", contract.PERIOD_YEAR)]
    line_at = names.index("_line")
    first: dict[tuple, tuple] = {}
    seen: set[tuple] = set()
    clashes, copies = [], []
    for row in rows:
        claim, key = claim_of(row[line_at]), tuple(row[i] for i in key_at)
        data = tuple(row[i] for i in data_at)
        if (claim, data) in seen:
            copies.append(row[line_at])
        seen.add((claim, data))
        if first.setdefault((claim, key), data) != data:
            clashes.append((row[line_at], f"key {key!r} sent twice with different values / 同一主键内容不同"))
    return clashes, copies


def build_claim(body: Any) -> Claim:
    """The claim's raw rows from a validated body (a `claim_model` instance); children inherit the visit's
    keys and may not contradict them."""
    visit = body.mdtrt.model_dump()
    keys = {k: visit[k] for k in INHERITED}
    claim = Claim(visit["mdtrt_id"], visit["psn_no"], visit["fixmedins_code"], {"mdtrt": [visit]})
    problems = []
    for part, (entity, many) in PARTS.items():
        if part == "mdtrt":
            continue
        value = getattr(body, part)
        if value is None:
            continue
        rows = [r.model_dump() for r in value] if many else [value.model_dump()]
        for i, row in enumerate(rows):
            for k in INHERITED:
                if k not in row:
                    continue
                if row[k] is None:
                    row[k] = keys[k]
                elif row[k] != keys[k]:
                    problems.append(Problem(claim.loc(entity, i, k), f"{row[k]!r} differs from the visit's "
                                            f"mdtrt.{k} / 与就诊记录不一致"))
        claim.rows[entity] = rows
    if problems:
        raise ClaimError(problems)
    return claim
