"""Per-file reconciliation of a knowledge-base import (知识库导入对账), like the claims ingestion's. Pure."""
from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.kb.points import Knowledge
from pipelines.kb.sources import Batch, Refusal


@dataclass
class FileCount:
    file: str
    batch: str = ""
    kind: str = ""
    sha256: str = ""
    points_read: int = 0
    code_rows_read: int = 0
    points_mapped: int = 0
    points_curation: int = 0
    rows_rejected: int = 0
    count_mismatches: int = 0
    status: str = "imported"


@dataclass
class Reconciliation:
    files: list[FileCount] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    mismatches: list[dict] = field(default_factory=list)
    curation: list[dict] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    def total(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.files)

    def as_dict(self) -> dict:
        return {"files": [vars(f) for f in self.files], "rejected": self.rejected, "count_mismatches": self.mismatches,
                "needs_curation": self.curation, "refused": [vars(r) for r in self.refused]}


def reconcile(batches: list[Batch], knowledge: list[Knowledge], refused: list[Refusal],
              hashes: dict[str, str]) -> Reconciliation:
    """Counts per file: points read = mapped + needing curation + point rows rejected; code rows read = code rows
    kept + code rows rejected."""
    rec = Reconciliation(refused=list(refused))
    for b, k in zip(batches, knowledge):
        for f in b.files:
            fc = FileCount(f, b.batch, b.kind, hashes.get(f, ""))
            mine = [p for p in k.points if p["file"] == f]
            rej = [r for r in k.rejected if r["file"] == f]
            fc.points_mapped = sum(p["status"] == "mapped" for p in mine)
            fc.points_curation = sum(p["status"] != "mapped" for p in mine)
            fc.points_read = len(mine) + sum(r["role"] == "points" for r in rej)
            code_sheets = {s.sheet for s in b.sheets if s.file == f and s.layout.shape.role == "codes"}
            fc.code_rows_read = sum(c["file"] == f and c["sheet"] in code_sheets for c in k.codes) + sum(
                r["role"] == "codes" for r in rej)
            fc.rows_rejected = len(rej)
            fc.count_mismatches = sum(m["file"] == f for m in k.mismatches)
            rec.files.append(fc)
        rec.rejected.extend(k.rejected)
        rec.mismatches.extend(k.mismatches)
        rec.curation.extend({"batch": p["batch"], "file": p["file"], "sheet": p["sheet"], "row": p["row"],
                             "point_no": p["point_no"], "name": p["name"], "reason": p["reason"], "text": p["basis"]}
                            for p in k.points if p["status"] != "mapped")
    for r in refused:
        rec.files.append(FileCount(r.file, sha256=hashes.get(r.file, ""), status="refused"))
    return rec


def to_text(rec: Reconciliation, release_id: str | None) -> str:
    head = (f"{'文件 file':<44} {'批次 batch':<10} {'知识点 points':>13} {'代码行 code rows':>16} {'已映射 mapped':>13} "
            f"{'待整理 curation':>15} {'拒绝 rejected':>13} {'数量不符 count≠':>15}  状态 status")
    lines = [f"知识库导入对账 knowledge-base import reconciliation: release {release_id or '— (not written)'}", head]
    for f in rec.files:
        lines.append(f"{f.file:<44} {f.batch:<10} {f.points_read:>13} {f.code_rows_read:>16} {f.points_mapped:>13} "
                     f"{f.points_curation:>15} {f.rows_rejected:>13} {f.count_mismatches:>15}  {f.status}")
    lines.append(f"{'合计 total':<44} {'':<10} {rec.total('points_read'):>13} {rec.total('code_rows_read'):>16} "
                 f"{rec.total('points_mapped'):>13} {rec.total('points_curation'):>15} {rec.total('rows_rejected'):>13} "
                 f"{rec.total('count_mismatches'):>15}")
    for r in rec.refused:
        lines.append(f"拒收 refused: {r}")
    for m in rec.mismatches[:50]:
        lines.append(f"数量不符 count mismatch: {m['file']}, sheet {m['sheet']!r}, row {m['row']}: point {m['point_no']} "
                     f"declares 知识点对应药品代码数量 {m['declared']!r}, {m['found']} code rows found")
    for r in rec.rejected[:50]:
        lines.append(f"拒绝 rejected: {r['file']}, sheet {r['sheet']!r}, row {r['row']}: {r['reason']}")
    for c in rec.curation[:50]:
        lines.append(f"待整理 needs curation: 第{c['batch']}批 {c['file']}, sheet {c['sheet']!r}, row {c['row']} "
                     f"({c['name']}): {c['reason']} — {c['text']!r}")
    more = max(len(rec.rejected), len(rec.curation), len(rec.mismatches)) - 50
    if more > 0:
        lines.append(f"… the full lists are in the import report ({more} more lines)")
    return "\n".join(lines)
