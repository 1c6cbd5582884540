"""Reading catalogue remarks into kb parameters with a table of phrasings (rules/kb/phrasings.yml) and
indications into ICD-10 prefixes with the analysts' curation files (rules/kb/curation/*.csv). Pure."""
from __future__ import annotations

import re
from dataclasses import dataclass

_FOLD = {**{chr(0xFF10 + i): str(i) for i in range(10)},
         **{chr(0xFF21 + i): chr(0x41 + i) for i in range(26)},
         **{chr(0xFF41 + i): chr(0x61 + i) for i in range(26)},
         "＜": "<", "＞": ">", "（": "(", "）": ")"}
_RANGE = re.compile(r"(?<=\d)(?:~|～|〜|至|到|－|—)(?=\d)")
_VALUE = re.compile(r"^(?P<g>[a-z]+)(?:(?P<op>[+-])(?P<k>\d+))?$")


def normalise(text: str | None) -> str:
    """Spaces and line breaks removed, full-width digits/letters folded, number ranges written `a-b`."""
    if not text:
        return ""
    out = re.sub(r"[\s\u3000]+", "", str(text)).translate(str.maketrans(_FOLD))
    return _RANGE.sub("-", out)


@dataclass(frozen=True)
class Phrasing:
    group: str
    pattern: re.Pattern
    sets: dict


def load_phrasings(doc: dict) -> dict[str, list[Phrasing]]:
    out: dict[str, list[Phrasing]] = {}
    for group, items in doc.items():
        out[group] = [Phrasing(group, re.compile(i["pattern"]), dict(i["set"])) for i in items]
    return out


def _value(expr, m: re.Match):
    if isinstance(expr, (int, float)):
        return expr
    s = str(expr)
    if s.startswith("'") and s.endswith("'"):
        return s[1:-1]
    v = _VALUE.match(s)
    if not v or v.group("g") not in m.groupdict():
        raise ValueError(f"phrasings.yml: value {expr!r} is neither a number, a quoted text nor a group of "
                         f"{m.re.pattern!r}")
    n = int(m.group(v.group("g")))
    k = int(v.group("k") or 0)
    return n + k if v.group("op") == "+" else n - k


def read_group(group: str, texts: list[str], table: dict[str, list[Phrasing]]) -> tuple[dict, str] | None:
    """Parameters of the first phrasing of `group` that matches one of `texts` (tried in order), with the
    text matched; None when no phrasing matches (the point needs curation)."""
    if group not in table:
        raise ValueError(f"phrasings.yml has no group {group!r}")
    for text in texts:
        norm = normalise(text)
        if not norm:
            continue
        for p in table[group]:
            m = p.pattern.search(norm)
            if m:
                return {k: _value(v, m) for k, v in p.sets.items()}, m.group(0)
    return None


@dataclass(frozen=True)
class Curation:
    name: str           # generic name, "" = any
    text: str           # normalised remark text the row applies to (contained in the point's text)
    icd10: str          # `|`-separated ICD-10 prefixes, dots removed, upper case
    source: str         # curation file and line


def load_curation(rows: list[tuple[str, int, dict]]) -> list[Curation]:
    """Curation rows (file, line, {name, text, icd10}); a row without text or codes is an error."""
    out = []
    for file, line, r in rows:
        text, codes = normalise(r.get("text")), (r.get("icd10") or "").strip()
        if not text or not codes:
            raise ValueError(f"{file} line {line}: a curation row needs `text` and `icd10`")
        prefixes = [c.strip().replace(".", "").upper() for c in codes.split("|") if c.strip()]
        bad = [p for p in prefixes if not re.fullmatch(r"[A-Z][0-9A-Z]*", p)]
        if bad:
            raise ValueError(f"{file} line {line}: field icd10: not ICD-10 prefixes: {', '.join(bad)}")
        out.append(Curation(normalise(r.get("name")), text, "|".join(prefixes), f"{file}:{line}"))
    return out


def curate(name: str, texts: list[str], curation: list[Curation]) -> Curation | None:
    """The curation row for an indication point: its text contained in the point's remark, its name blank or
    the point's; the longest text wins, a named row before an unnamed one."""
    norm_name = normalise(name)
    hay = [normalise(t) for t in texts if t]
    best = None
    for c in curation:
        if c.name and c.name != norm_name:
            continue
        if any(c.text in h for h in hay):
            rank = (len(c.text), bool(c.name))
            if best is None or rank > best[0]:
                best = (rank, c)
    return best[1] if best else None
