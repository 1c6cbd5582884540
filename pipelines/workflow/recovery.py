"""Recovery records (追回到账): the agency closes cases with the amount actually recovered.

Columns: suspect_id 疑点编号, recovered_amount 追回金额, closed_on 结案日期, handled_by 经办人, note 备注.
Each row becomes a `closed` decision; same no-loss rules as feedback (loaded or rejected with a reason).
"""
from __future__ import annotations

import datetime as dt

from pipelines.workflow.cases import Decision, Reject
from pipelines.workflow.sheets import CellError, Form, parse_date, parse_money, text

FIELDS: dict[str, tuple[str, ...]] = {
    "suspect_id": ("疑点编号", "疑点ID"),
    "recovered_amount": ("追回金额", "实际追回金额", "recovered"),
    "closed_on": ("结案日期", "到账日期", "date"),
    "handled_by": ("经办人", "actor"),
    "note": ("备注", "notes"),
}


def parse_recoveries(form: Form) -> tuple[list[Decision], list[Reject]]:
    decisions, rejects = [], []
    name = form.path.name
    for line, row in form.rows:
        raw = {k: (None if v is None else str(v)) for k, v in row.items()}
        sid = text(row.get("suspect_id"))
        try:
            if not sid:
                raise CellError("suspect_id missing / 缺少疑点编号")
            fld = "recovered_amount"
            amount = parse_money(row.get("recovered_amount"))
            if amount is None:
                raise CellError("recovered amount missing / 缺少追回金额")
            fld = "closed_on"
            day = parse_date(row.get("closed_on"))
            if day is None:
                raise CellError("closing date missing / 缺少结案日期")
            fld = "handled_by"
            actor = text(row.get("handled_by"))
            if not actor:
                raise CellError("handled_by missing / 缺少经办人")
        except CellError as exc:
            rejects.append(Reject(name, line, fld if sid else "suspect_id", str(exc), sid, raw))
            continue
        decisions.append(Decision(sid, "closed", actor, dt.datetime.combine(day, dt.time(), dt.timezone.utc),
                                  name, line, amount=amount, reason=text(row.get("note")), raw=raw))
    return decisions, rejects


def ingest_recoveries(lake, path, *, recorded_at: dt.datetime, batch_id: str):
    from pipelines.workflow import store
    from pipelines.workflow.sheets import read_form

    form = read_form(path, FIELDS, key="suspect_id")
    decisions, rejects = parse_recoveries(form)
    return store.record_decisions(lake, decisions, rejects, kind="recovery", file=form.path.name,
                                  institution=None, batch_id=batch_id, recorded_at=recorded_at)
