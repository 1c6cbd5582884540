"""The reconciliation a load reports (入库对账): per file, rows read = loaded + quarantined."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FileReport:
    file: str
    entity: str
    format: str
    encoding: str | None
    sha256: str
    status: str = "loaded"               # loaded | skipped
    rows_read: int = 0
    rows_loaded: int = 0                 # identical duplicates included
    rows_quarantined: int = 0
    rows_duplicate: int = 0              # identical copies counted once in silver
    unknown_columns: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_quarantined


@dataclass
class LoadReport:
    load_id: str
    drop_id: str
    files: list[FileReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)   # table -> version written
    status: str = "loaded"                                    # loaded | nothing_to_load | rolled_back

    def file(self, name: str) -> FileReport:
        """The report of the drop's file `name`."""
        return next(f for f in self.files if f.file == name)

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    @property
    def balanced(self) -> bool:
        return all(f.balanced for f in self.files)

    def to_text(self) -> str:
        head = [("文件 file", 30), ("实体 entity", 14), ("格式 format", 11), ("编码 encoding", 13),
                ("读入 read", 10), ("入库 loaded", 11), ("隔离 quarantined", 16), ("重复 dup", 9),
                ("状态 status", 11)]
        rows = [[f.file, f.entity, f.format, f.encoding or "-", f.rows_read, f.rows_loaded,
                 f.rows_quarantined, f.rows_duplicate, f.status] for f in self.files]
        rows.append(["合计 total", "", "", "", self.rows_read, self.rows_loaded, self.rows_quarantined,
                     sum(f.rows_duplicate for f in self.files), "平衡 ok" if self.balanced else "不平衡 UNBALANCED"])
        out = [f"load {self.load_id} (drop {self.drop_id}) 入库对账 reconciliation: {self.status}"]
        out.append("  ".join(_pad(h, w) for h, w in head))
        for r in rows:
            out.append("  ".join(_pad(str(v), w) for v, (_, w) in zip(r, head)))
        for f in self.files:
            if f.unknown_columns:
                out.append(f"  {f.file}: ignored columns 未识别列: {', '.join(f.unknown_columns)}")
            if f.note:
                out.append(f"  {f.file}: {f.note}")
        for w in self.incomplete:
            out.append(f"  incomplete 记录不完整: {w}")
        for w in self.warnings:
            out.append(f"  warning 警告: {w}")
        return "\n".join(out)


def _pad(s: str, width: int) -> str:
    # East Asian characters take two columns in a terminal
    w = sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)
    return s + " " * max(0, width - w)
