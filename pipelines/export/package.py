"""One institution's audit package (机构疑点包): pure builders from published suspect rows to file bytes.

`build_package(rows, institution, period, rules=..., generated_at=...)` returns `{file name: bytes}` for

    suspects.xlsx    the suspect list, Chinese headers (contract.SUSPECT_COLUMNS), 明确违规/可疑, rule names
    suspects.csv     the same rows, English canonical headers, UTF-8 with BOM (Excel opens the Chinese)
    violations.json  one object per suspect in the national 3101/3102 violation result shape
    summary.html     bilingual summary, charts embedded as base64 PNG, tables by category, month and rule
    feedback.xlsx    template for the institution's self-inspection answers (确认/申诉)
    manifest.json    SHA-256 and size of every other file, institution, period, run ids, counts, total

Nothing here reads the lake or the clock: the caller passes the rows (already read through
`pipelines.storage.Lake`), the rule metadata and the time. `write_package` and `verify_manifest` are the
only functions touching the file system, and only the package's own folder.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Mapping, Sequence

import pyarrow as pa

from pipelines.contract import GOLD_SUSPECTS
from pipelines.export.excel import build_feedback_xlsx, build_xlsx
from pipelines.export.records import (  # noqa: F401  (the package's names, in one place for its callers)
    CSV, FEEDBACK, FEEDBACK_CHOICES, FEEDBACK_COLUMNS, FORMAT, HTML, JSON, LIST_COLUMNS, MANIFEST, NATIONAL_KEYS,
    PACKAGE_FILES, XLSX,
    _PACKAGE_NAME_RE, ExportError, PackageInfo, build_csv, build_json, check_institution, list_records,
    national_violation, package_name, period_months, rule_info, select_suspects, suspects_filter, total_amount,
)
from pipelines.export.summary import build_charts, build_html, find_cjk_font, summarise

# ------------------------------------------------------------------------------------------ package

def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_manifest(files: Mapping[str, bytes], info: PackageInfo, records: Sequence[Mapping],
                   run_ids: Sequence[str], fingerprints: Sequence[str], font: str | None) -> dict:
    n = len(records)
    rows = {XLSX: n, CSV: n, JSON: n, FEEDBACK: n}
    return {
        "format": FORMAT,
        "institution": info.institution,
        "institution_name": info.institution_name,
        "period": info.period,
        "months": period_months(info.period),
        "generated_at": info.generated_iso,
        "source": {"table": GOLD_SUSPECTS, "delta_version": info.source_version},
        "empty": n == 0,
        "note": ("本期该机构无疑点 / no suspects for this institution in this period" if n == 0
                 else f"{n} suspects / 疑点 {n} 条"),
        "row_count": n,
        "total_amount": str(total_amount(records)),
        "currency": "CNY",
        "run_ids": list(run_ids),
        "rule_set_fingerprint": fingerprints[0] if len(fingerprints) == 1 else None,
        "rule_set_fingerprints": list(fingerprints),
        "headers": {
            XLSX: "Chinese labels (contract §5 SUSPECT_COLUMNS, 规则名称 added); severity as 明确违规/可疑; "
                  "identifiers as text cells (format @): every digit and leading zero kept (the Excel copy)",
            CSV: "English canonical column names (contract §5, rule_name added); UTF-8 with BOM; "
                 "severity as violation/suspicious; event_time yyyy-MM-dd HH:mm:ss, published_at UTC ISO 8601; "
                 "text beginning with = + - @ tab CR carries a leading ' (OWASP); identifiers are plain text: "
                 f"open {XLSX} in Excel, or import this file with the identifier columns as Text",
            JSON: "national 3101/3102 violation result shape, one object per suspect; values verbatim",
            FEEDBACK: "row 1 Chinese headers, row 2 English names; columns "
                      f"{', '.join(FEEDBACK_COLUMNS)} to fill from row 3; answer 确认 (confirmed) / 申诉 (disputed)",
        },
        "charts": {"font": font, "labels": "zh+en" if font else "en (no CJK font installed)"},
        "files": [{"name": name, "sha256": sha256(data), "size": len(data), "rows": rows.get(name)}
                  for name, data in files.items()],
    }


def build_package(rows: pa.Table, institution: str, period: str, *, rules: Mapping[str, Mapping],
                  generated_at: dt.datetime, institution_name: str | None = None,
                  source_version: int | None = None, high_amount: Decimal | float | str | None = None,
                  font: str | None | bool = True) -> dict[str, bytes]:
    """Every file of the package, manifest last. `rows` may hold more than the institution and period:
    only the institution's rows of the period are used. `font=True` looks for an installed CJK font."""
    check_institution(institution)
    period_months(period)
    info = PackageInfo(institution, period, generated_at, institution_name, source_version,
                       Decimal(str(high_amount)) if high_amount is not None else None)
    selected = select_suspects(rows, institution, period)
    records = list_records(selected, rules)
    run_ids = sorted({r["run_id"] for r in records if r["run_id"]})
    fingerprints = sorted({r["rule_set_fingerprint"] for r in records if r["rule_set_fingerprint"]})
    if font is True:
        font = find_cjk_font()
    font = font or None
    summary = summarise(records, rules)
    files: dict[str, bytes] = {
        XLSX: build_xlsx(records, info, run_ids, fingerprints),
        CSV: build_csv(records),
        JSON: build_json(records, rules),
        HTML: build_html(summary, build_charts(summary, font), info, run_ids, fingerprints, font).encode("utf-8"),
        FEEDBACK: build_feedback_xlsx(records, info),
    }
    manifest = build_manifest(files, info, records, run_ids, fingerprints, font)
    files[MANIFEST] = (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    return files


# ------------------------------------------------------------------------------------------ file system

def write_package(files: Mapping[str, bytes], out: str | Path, name: str) -> Path:
    """Write the files to `<out>/<name>/` atomically; a previous package of that name is replaced,
    any other existing folder of that name is left alone (ExportError)."""
    if not _PACKAGE_NAME_RE.fullmatch(name):
        raise ExportError(f"package name {name!r} refused (institution_period expected)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / name
    if target.exists() and not (target / MANIFEST).is_file():
        raise ExportError(f"{target} exists and is not an export package: refusing to overwrite it")
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out))
    try:
        for fname, data in files.items():
            (tmp / fname).write_bytes(data)
        os.chmod(tmp, 0o755)
        if target.exists():
            old = target.with_name(f".{name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target


def verify_manifest(directory: str | Path) -> list[str]:
    """Problems of an export package folder (empty when every file matches its manifest)."""
    d = Path(directory)
    if not d.is_dir():
        return [f"{d}: not a directory"]
    mpath = d / MANIFEST
    if not mpath.is_file():
        return [f"{d}: no {MANIFEST}"]
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        entries = manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{MANIFEST}: unreadable ({exc})"]
    problems: list[str] = []
    listed: set[str] = set()
    intact: set[str] = set()
    for e in entries:
        name = e.get("name") if isinstance(e, dict) else None
        if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith(".") \
                or name == MANIFEST:
            problems.append(f"{MANIFEST}: invalid file entry {e!r}")
            continue
        listed.add(name)
        p = d / name
        if not p.is_file():
            problems.append(f"{name}: missing")
            continue
        data = p.read_bytes()
        if len(data) != e.get("size"):
            problems.append(f"{name}: size {len(data)} differs from manifest {e.get('size')}")
        if sha256(data) != e.get("sha256"):
            problems.append(f"{name}: SHA-256 differs from manifest (file changed)")
        else:
            intact.add(name)
    for p in sorted(d.iterdir()):
        if p.name != MANIFEST and p.name not in listed:
            problems.append(f"{p.name}: not listed in {MANIFEST}")
    n = manifest.get("row_count")
    if CSV in intact:
        rows = list(csv.reader(io.StringIO((d / CSV).read_text(encoding="utf-8-sig"))))
        if len(rows) - 1 != n:
            problems.append(f"{CSV}: {len(rows) - 1} rows, manifest says {n}")
    if JSON in intact:
        doc = json.loads((d / JSON).read_text(encoding="utf-8"))
        if len(doc) != n:
            problems.append(f"{JSON}: {len(doc)} objects, manifest says {n}")
        total = sum((Decimal(str(o["vola_amt"])) for o in doc if o.get("vola_amt") is not None), Decimal("0.00"))
        if manifest.get("total_amount") is not None and total != Decimal(manifest["total_amount"]):
            problems.append(f"{JSON}: amounts sum to {total}, manifest says {manifest['total_amount']}")
    return problems
