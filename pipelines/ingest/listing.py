"""What a landing drop holds: every file under the folder is loaded, skipped (said so) or refused — never
ignored.

- files in sub-folders are part of the drop, named by their path relative to the landing folder
  (`2023-03/fee_list.csv`: that name is the file's lineage in bronze, the quarantine and the ledger);
- hidden and temporary files (`.x`, `.~lock.x#`, `~$x.xlsx`, `x.tmp`, `Thumbs.db`) are skipped and listed
  as skipped in the load report;
- the drop's manifest (`manifest.yml`, see `manifest.py`) is read, not loaded;
- an empty file (0 bytes: an export of no rows, not even a header) holds nothing to lose: skipped, said so;
- a symlink leading outside the landing folder is refused without being opened: its error names the link,
  never its target or its content.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = "manifest.yml"
_TEMP_SUFFIXES = (".tmp", ".part", ".crdownload", ".swp", "~")
_SYSTEM_FILES = ("thumbs.db", "desktop.ini")


@dataclass
class DropListing:
    files: list[tuple[Path, str]] = field(default_factory=list)    # (path, name relative to the drop)
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (name, why)
    refused: list[str] = field(default_factory=list)               # messages


def skip_reason(name: str) -> str | None:
    """Why a file of this (base) name is not data, or None."""
    low = name.lower()
    if name.startswith(".~lock") or name.startswith("~$"):
        return "temporary file of an office program / 办公软件临时文件"
    if name.startswith("."):
        return "hidden file / 隐藏文件"
    if low.endswith(_TEMP_SUFFIXES) or low in _SYSTEM_FILES:
        return "temporary or system file / 临时或系统文件"
    return None


def _inside(path: Path, root: Path) -> bool:
    try:
        Path(os.path.realpath(path)).relative_to(root)
        return True
    except ValueError:
        return False


def list_landing(landing: Path) -> DropListing:
    """Every file under `landing` (recursively), sorted by relative name, sorted into loaded/skipped/refused."""
    landing = Path(landing)
    root = Path(os.path.realpath(landing))
    out = DropListing()
    for dirpath, dirnames, filenames in os.walk(landing, followlinks=False):
        here = Path(dirpath)
        for d in list(dirnames):
            rel = (here / d).relative_to(landing).as_posix()
            if d.startswith("."):
                out.skipped.append((rel + "/", "hidden folder / 隐藏目录"))
                dirnames.remove(d)
            elif (here / d).is_symlink():
                dirnames.remove(d)
                if not _inside(here / d, root):
                    out.refused.append(f"{rel}: a link to a folder outside the landing folder, not read "
                                       f"/ 指向落地目录之外的链接, 未读取")
                else:
                    out.skipped.append((rel + "/", "link to a folder of the drop, read where it lies "
                                        "/ 指向本批目录的链接"))
        for f in filenames:
            p = here / f
            rel = p.relative_to(landing).as_posix()
            why = skip_reason(f)
            if rel == MANIFEST:
                continue
            if p.is_symlink() and not _inside(p, root):
                out.refused.append(f"{rel}: a link to a file outside the landing folder, not read "
                                   f"/ 指向落地目录之外的链接, 未读取")
            elif why:
                out.skipped.append((rel, why))
            elif not p.is_file():
                out.refused.append(f"{rel}: not a regular file / 不是普通文件")
            elif p.stat().st_size == 0:
                out.skipped.append((rel, "empty file, 0 bytes: no rows / 空文件, 无数据行"))
            else:
                out.files.append((p, rel))
    out.files.sort(key=lambda x: x[1])
    out.skipped.sort()
    return out
