"""A drop's manifest (`manifest.yml` at the top of the landing folder, optional): what the sender declares
about its files. Today one key: `decimal`, the decimal mark of the drop's text files (CSV/TSV): "." (the
default: `1,234.50` reads, `12,80` is quarantined as ambiguous) or "," (`12,80` and `1.234,50` read).
Parquet, JSON lines and spreadsheet numbers carry their own types and are not affected. An unknown key or
value refuses the drop: a declaration that is not understood is not guessed at."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.ingest.inspection import RefusedFile
from pipelines.ingest.listing import MANIFEST

TEXT = ("csv", "csv.gz", "tsv")


@dataclass(frozen=True)
class Manifest:
    decimal: str = "."

    def decimal_of(self, fmt: str) -> str:
        """The decimal mark of a file of format `fmt`."""
        return self.decimal if fmt in TEXT else "."


def read_manifest(landing: Path) -> Manifest:
    import yaml
    p = Path(landing) / MANIFEST
    if not p.is_file():
        return Manifest()
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RefusedFile(f"{MANIFEST}: not readable YAML ({exc}) / 清单文件无法解析") from exc
    if not isinstance(doc, dict) or set(doc) - {"decimal"}:
        raise RefusedFile(f"{MANIFEST}: unknown keys {sorted(set(doc) - {'decimal'}) if isinstance(doc, dict) else doc!r}"
                          f" (known: decimal) / 清单文件含未知项")
    decimal = str(doc.get("decimal", "."))
    if decimal not in (".", ","):
        raise RefusedFile(f"{MANIFEST}: decimal must be \".\" or \",\", not {decimal!r} / 小数点声明无效")
    return Manifest(decimal)
