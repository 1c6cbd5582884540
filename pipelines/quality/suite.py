"""A quality suite as data: a YAML file of expectation records, run on frames computed beforehand.

A suite file (`gate_suite.yml`, `silver_suite.yml`, shipped with this package) holds:
- `suite`: its name; `params`: the values the code supplies to a run; `frames`: the kinds of frame it
  checks, in the order they are validated, each with the parameters a frame of that kind brings (templates
  and `$name` kwargs may use both); `fields`: message fields every record shares (see `messages`);
- `expectations`: records, each with `name` (a template: `{frame}` is the frame's name), `frame` (the
  kind of frame it checks, computed by a function the stage registers under that kind), `expect` (a Great
  Expectations class) and its `kwargs` (a string `$name` is a parameter), `description` and `message`
  (`zh` and `en` templates), optionally `severity` (failure | warning) and `when` (a parameter that must be
  true, else the record is skipped for that frame).
`checks` turns the records into GX checks for the frames of a run: a record runs once per frame of its kind,
kinds in the order of `frames`, records in file order. Nothing else decides what is checked: a kind no
record names is not even computed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Mapping

import pyarrow as pa
import yaml

from pipelines.quality import gx as qgx
from pipelines.quality import messages as qmsg
from pipelines.quality.messages import Message

RECORD_KEYS = frozenset({"name", "frame", "expect", "kwargs", "description", "message", "severity", "when"})
MESSAGE_KEYS = frozenset({"zh", "en", "per", "fields", "limit", "rows"})
SEVERITIES = ("failure", "warning")


@dataclass(frozen=True)
class Expectation:
    """One record of a suite file."""

    name: str
    frame: str
    expect: str
    kwargs: Mapping
    description: tuple[str, str]  # zh, en
    message: Message
    severity: str = "failure"
    when: str | None = None


@dataclass(frozen=True)
class Suite:
    name: str
    params: tuple[str, ...]
    frame_params: Mapping[str, tuple[str, ...]]  # kind -> the parameters a frame of that kind brings
    expectations: tuple[Expectation, ...]

    @property
    def frames(self) -> list[str]:
        """The kinds of frame the suite's records check, in the order of the file's `frames`."""
        used = {e.frame for e in self.expectations}
        return [k for k in self.frame_params if k in used]

    def names(self, e: Expectation) -> set[str]:
        """What the templates of record `e` may name besides fields and row columns."""
        return {*self.params, *self.frame_params.get(e.frame, ()), "frame"}


@dataclass(frozen=True)
class Frame:
    """A computed frame: its kind (what the suite names), its name in the run, the table, its parameters."""

    kind: str
    name: str
    table: pa.Table
    params: Mapping = field(default_factory=dict)


# ------------------------------------------------------------------------------------ reading

def _message(raw: Mapping, shared_fields: Mapping) -> Message:
    per = raw.get("per", "all")
    return Message(zh=raw["zh"], en=raw["en"], per=per if isinstance(per, str) else tuple(per),
                   fields={**shared_fields, **(raw.get("fields") or {})}, limit=raw.get("limit"),
                   rows=raw.get("rows"))


def _record(raw: Mapping, shared_fields: Mapping) -> Expectation:
    unknown = set(raw) - RECORD_KEYS
    if unknown:
        raise ValueError(f"expectation {raw.get('name')!r}: unknown keys {sorted(unknown)}")
    unknown = set(raw["message"]) - MESSAGE_KEYS
    if unknown:
        raise ValueError(f"expectation {raw['name']!r}: unknown message keys {sorted(unknown)}")
    return Expectation(
        name=raw["name"], frame=raw["frame"], expect=raw["expect"], kwargs=dict(raw.get("kwargs") or {}),
        description=(raw["description"]["zh"], raw["description"]["en"]),
        message=_message(raw["message"], shared_fields), severity=raw.get("severity", "failure"),
        when=raw.get("when"))


def load_suite(path: Path) -> Suite:
    """The suite of a YAML file; ValueError when it is not well-formed (see `problems`)."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    try:
        shared = raw.get("fields") or {}
        frames = {k: tuple(v or ()) for k, v in (raw.get("frames") or {}).items()}
        suite = Suite(raw["suite"], tuple(raw.get("params") or ()), frames,
                      tuple(_record(r, shared) for r in raw["expectations"]))
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a suite file ({type(e).__name__}: {e})") from e
    found = problems(suite)
    if found:
        raise ValueError(f"{path}: " + "; ".join(found))
    return suite


# ------------------------------------------------------------------------------------ well-formed

def _field_problems(where: str, name: str, spec: Mapping) -> list[str]:
    out = [f"{where}: field {name}: unknown keys {sorted(set(spec) - qmsg.FIELD_KEYS)}"] \
        if set(spec) - qmsg.FIELD_KEYS else []
    if ("column" in spec) == ("of" in spec):
        out.append(f"{where}: field {name} needs one of `column` or `of`")
    for key, allowed in (("distinct", qmsg.DISTINCT), ("reduce", qmsg.REDUCE), ("more", qmsg.MORE)):
        if spec.get(key) not in allowed:
            out.append(f"{where}: field {name}: {key} must be one of {allowed[1:]}")
    return out


def _message_problems(e: Expectation, known: set[str], columns: set[str] | None) -> list[str]:
    m, where, out = e.message, f"expectation {e.name}", []
    if isinstance(m.per, str) and m.per not in qmsg.PER_MODES:
        out.append(f"{where}: per must be row, all, once or a list of columns, not {m.per!r}")
    if m.per != "once" and e.expect not in qmsg.ROW_EXPECTATIONS and not m.rows:
        out.append(f"{where}: {e.expect} rejects no rows: use `per: once`")
    if m.rows is not None and set(m.rows) != {"column", "equals"}:
        out.append(f"{where}: rows must be {{column, equals}}")
    said = qmsg.placeholders(m.zh) | qmsg.placeholders(m.en)
    for name, spec in m.fields.items():
        out += _field_problems(where, name, spec)
        unknown = qmsg.placeholders(spec.get("of", "")) | {spec.get("column")} - {None}
        unknown -= columns if columns is not None else unknown
        if name in said and unknown:  # a shared field only where a template says it
            out.append(f"{where}: field {name} names {sorted(unknown)}, not columns of frame {e.frame}")
    if m.per == "row":
        known |= columns if columns is not None else qmsg.placeholders(m.zh) | qmsg.placeholders(m.en)
    elif m.per != "once":
        known |= {"n", *m.fields, *(() if m.per == "all" else m.per)}
    for lang, template in (("zh", m.zh), ("en", m.en)):
        unknown = qmsg.placeholders(template) - known
        if unknown:
            out.append(f"{where}: message {lang} names {sorted(unknown)}, neither a parameter nor a field")
    return out


def problems(suite: Suite, frame_columns: Mapping[str, set[str]] | None = None) -> list[str]:
    """What is wrong with a suite: repeated names, unknown severities or message modes, templates naming
    what no parameter or field supplies; with `frame_columns` (kind → the columns its function computes),
    also frames nothing computes and columns a frame lacks."""
    out: list[str] = []
    names = [e.name for e in suite.expectations]
    out += [f"expectation {n} is defined twice" for n in sorted({n for n in names if names.count(n) > 1})]
    for e in suite.expectations:
        params = suite.names(e)
        columns = None if frame_columns is None else frame_columns.get(e.frame)
        if e.frame not in suite.frame_params:
            out.append(f"expectation {e.name}: frame {e.frame!r} is not listed under `frames`")
        elif frame_columns is not None and columns is None:
            out.append(f"expectation {e.name}: no function computes frame {e.frame!r}")
        if e.severity not in SEVERITIES:
            out.append(f"expectation {e.name}: severity must be one of {SEVERITIES}")
        if e.when is not None and e.when not in params:
            out.append(f"expectation {e.name}: `when: {e.when}` is not a parameter of the suite")
        refs = [v[1:] for v in e.kwargs.values() if isinstance(v, str) and v.startswith("$")]
        out += [f"expectation {e.name}: kwarg ${r} is not a parameter of the suite" for r in refs if r not in params]
        named = [e.kwargs.get("column"), (e.message.rows or {}).get("column"),
                 *(e.message.per if isinstance(e.message.per, tuple) else ())]
        out += [f"expectation {e.name}: frame {e.frame} has no column {c}"
                for c in named if c and columns is not None and c not in columns]
        for template in (e.name, *e.description):
            out += [f"expectation {e.name}: {template!r} names unknown {p}"
                    for p in sorted(qmsg.placeholders(template) - params)]
        out += _message_problems(e, params, columns)
    return out


# ------------------------------------------------------------------------------------ running

def _value(v, values: Mapping):
    return values[v[1:]] if isinstance(v, str) and v.startswith("$") else v


#: columns that say which row it is, shown first wherever a frame has them
ROW_KEYS = ("suspect_id", "rule_id", "fixmedins_code", "period", "column")


def shown_columns(e: Expectation, kwargs: Mapping, columns: list[str]) -> tuple[str, ...]:
    """The columns of `columns` that show what is wrong with a row record `e` rejects: the row's keys, the
    column checked and those its message names (groups, templates, fields)."""
    m = e.message
    named = [*ROW_KEYS, *(m.per if isinstance(m.per, tuple) else ()), kwargs.get("column"),
             (m.rows or {}).get("column")]
    named += sorted(qmsg.placeholders(m.zh) | qmsg.placeholders(m.en))
    for spec in m.fields.values():
        named += [spec.get("column"), *sorted(qmsg.placeholders(spec.get("of", "")))]
    return tuple(dict.fromkeys(c for c in named if c in columns))


def _check(gxe, e: Expectation, frame: Frame, values: Mapping) -> qgx.Check:
    kwargs = {k: _value(v, values) for k, v in e.kwargs.items()}
    description = qmsg.bilingual(e.description[0].format(**values), e.description[1].format(**values))
    expectation = getattr(gxe, e.expect)(**kwargs, description=description)

    @cache
    def rows() -> list[dict] | None:
        return qmsg.unexpected_rows(frame.table, e.expect, kwargs, e.message)

    def describe() -> list[str]:
        return qmsg.describe(e.message, rows(), values)
    return qgx.Check(e.name.format(**values), frame.name, expectation, describe, severity=e.severity,
                     rows=rows, columns=shown_columns(e, kwargs, frame.table.column_names))


def checks(suite: Suite, frames: Mapping[str, list[Frame]], params: Mapping) -> list[qgx.Check]:
    """The GX checks of a run: each record on each frame of its kind (see the module docstring)."""
    missing = set(suite.params) - set(params)
    missing |= {f"{f.name}.{p}" for k in suite.frames for f in frames.get(k, ())
                for p in suite.frame_params[k] if p not in f.params}
    if missing:
        raise ValueError(f"suite {suite.name}: parameters not supplied: {sorted(missing)}")
    gxe = qgx.expectations()
    out: list[qgx.Check] = []
    for kind in suite.frames:
        for frame in frames.get(kind, ()):
            values = {**params, "frame": frame.name, **frame.params}
            out += [_check(gxe, e, frame, values) for e in suite.expectations
                    if e.frame == kind and (e.when is None or values.get(e.when))]
    return out


def run(suite: Suite, frames: Mapping[str, list[Frame]], params: Mapping,
        report_dir: Path | None, run_name: str | None = None) -> qgx.SuiteRun | None:
    """Validate the frames against the suite (Data Docs in `report_dir`, the run named `run_name`); None
    when no check applies."""
    found = checks(suite, frames, params)
    if not found:
        return None
    tables = {f.name: f.table for fs in frames.values() for f in fs}
    return qgx.run_suite(suite.name, tables, found, report_dir, run_name)
