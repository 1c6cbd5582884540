"""Institution feedback (机构自查反馈): one answer per item of its suspect list, from the feedback template
(`feedback.xlsx` of the export package, or the same columns as .csv).

Columns: suspect_id 疑点编号, answer 反馈结论 (confirmed 确认 / disputed 申诉), refund_amount 退回金额,
reason 申诉理由, evidence_ref 证据材料编号. Other columns (the pre-filled rule, amount, evidence) are ignored.
A row naming a suspect but with no answer and nothing else filled is an item not answered yet: it is
counted, not rejected. Every other row ends as a decision (then loaded or rejected by `cases.decide`) or
as a rejection here (malformed cell), with its line and field.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pipelines.contract import FEEDBACK_ANSWERS, FEEDBACK_FORM
from pipelines.workflow.cases import Decision, Reject
from pipelines.workflow.sheets import Form, RowReject, answer_rows, parse_decision_cells, text

FIELDS = FEEDBACK_FORM
ANSWER_VALUES = FEEDBACK_ANSWERS


@dataclass
class ParsedFeedback:
    decisions: list[Decision] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    unanswered: list[int] = field(default_factory=list)   # lines naming an item with no answer yet

    @property
    def rows(self) -> int:
        return len(self.decisions) + len(self.rejects) + len(self.unanswered)


def parse_feedback(form: Form, *, institution: str, received_at: dt.datetime) -> ParsedFeedback:
    """Rows of a feedback form → decisions dated `received_at`, made by `institution`."""
    out = ParsedFeedback()
    name = form.path.name
    for line, row, sid, raw, reject in answer_rows(form, out.rejects):
        filled = [k for k in ("answer", "refund_amount", "reason", "evidence_ref") if text(row.get(k))]
        if not filled:
            out.unanswered.append(line)
            continue
        try:
            answer, amount = parse_decision_cells(
                row, choice_field="answer", choices=ANSWER_VALUES, amount_field="refund_amount",
                missing="answer missing (confirmed 确认 / disputed 申诉) / 缺少反馈结论")
        except RowReject as exc:
            reject(exc.field, exc.reason)
            continue
        if answer == "disputed" and amount not in (None,) and amount != 0:
            reject("refund_amount", "a disputed item refunds nothing / 申诉项不应填写退回金额")
            continue
        out.decisions.append(Decision(
            suspect_id=sid, status=answer, actor=institution, decided_at=received_at, source_file=name,
            source_line=line, amount=amount if answer == "confirmed" else None,
            reason=text(row.get("reason")), evidence_ref=text(row.get("evidence_ref")),
            institution=institution, raw=raw))
    return out


def ingest_feedback(lake, path, *, institution: str, received_at: dt.datetime, recorded_at: dt.datetime,
                    batch_id: str):
    """Read one feedback file and record its answers (store.record_decisions)."""
    from pipelines.workflow import store
    from pipelines.workflow.sheets import read_form

    form = read_form(path, FIELDS, key="suspect_id")
    parsed = parse_feedback(form, institution=institution, received_at=received_at)
    return store.record_decisions(lake, parsed.decisions, parsed.rejects, kind="feedback", file=form.path.name,
                                  institution=institution, batch_id=batch_id, recorded_at=recorded_at,
                                  not_answered=len(parsed.unanswered))
