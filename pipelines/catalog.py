"""The rule catalog: rules are data (rules/catalog/*.yml), their SQL is a template (rules/templates/*.sql).

One catalog file per template, named after it: the instances of `rules/templates/daily_cap.sql` live in
`rules/catalog/daily_cap.yml`. A rule instance binds a template's parameters; thresholds come from
knowledge-base tables the template joins, never from here. `lint()` is the catalog's own test: unique ids,
known family, existing template, every parameter bound, required metadata present, each rule in the file
of its template.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterable

import yaml

from pipelines.config import REPO_ROOT

#: 违规类别: the six classes of the campaign and the extended ones, with their English labels.
CATEGORY_EN: dict[str, str] = {
    "超量收费": "Over-quantity", "超医保适应症": "Off-indication", "超医保支付范围": "Outside payment scope",
    "过度检查": "Over-testing", "虚记收费": "Phantom charges", "重复收费": "Duplicate charging",
    # extended classes of the supervision plans
    "分解收费": "Unbundling", "分解住院": "Split admission", "挂床住院": "Bed hanging",
    "串换收费": "Item substitution", "盗刷冒名": "Identity misuse", "进销存不符": "Inventory mismatch",
    "耗材加价": "Supply markup", "自费超比例": "Self-pay over ratio", "超标准收费": "Above-standard charge",
    "过度诊疗": "Over-treatment",
    # person-level patterns (issue #16)
    "倒卖医保药品": "Resale of insured drugs", "结伴就医": "Group visits",
}
CATEGORIES = tuple(CATEGORY_EN)
#: ascii keys of the categories (metric names), derived from the English labels
CATEGORY_KEYS = {zh: re.sub(r"[^a-z0-9]+", "_", en.lower()).strip("_") for zh, en in CATEGORY_EN.items()}
SEVERITIES = ("violation", "suspicious")
STATUSES = ("draft", "active", "retired")
SCOPES = ("门诊", "住院")
FOCUS_TAGS = ("重症医学", "门诊统筹", "高值耗材", "日间病床", "血液净化", "骨科", "心血管", "康复", "检查检验")
GRAINS = ("line", "visit", "item-month")
REQUIRED_KEYS = ("id", "version", "family", "template", "name", "category", "severity", "status", "scope",
                 "legal_basis", "description")
_ID_RE = re.compile(r"^[a-z][a-z0-9_]+$")
_PARAM_RE = re.compile(r"\{\{\s*params\.([a-zA-Z_][a-zA-Z0-9_]*)")
_ITEM_RE = re.compile(r"^(?P<indent> *)- id:\s*['\"]?(?P<id>[^'\"\s#]+)")


@dataclass(frozen=True)
class Family:
    name: str
    grain: str
    partition: str
    label: str


@dataclass(frozen=True)
class Rule:
    id: str
    version: int
    family: str
    template: str
    name: str
    category: str
    severity: str
    status: str
    scope: tuple[str, ...]
    legal_basis: str
    description: str
    focus_tags: tuple[str, ...] = ()
    false_positives: str = ""
    params: dict = field(default_factory=dict, hash=False, compare=False)
    source: str = ""

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def catalog_file(self) -> str:
        """The catalog file this rule belongs in: the one named after its template."""
        return f"{self.template}.yml"


@dataclass
class Catalog:
    rules_dir: Path
    families: dict[str, Family]
    rules: list[Rule]
    templates: dict[str, str]
    views: dict[str, str]

    @cached_property
    def by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}

    def select(self, *, rule_ids: Iterable[str] | None = None, families: Iterable[str] | None = None,
               tags: Iterable[str] | None = None, include_draft: bool = False) -> list[Rule]:
        ids, fams, tg = (set(x) if x else None for x in (rule_ids, families, tags))
        out = []
        for r in self.rules:
            if r.status == "retired" or (r.status == "draft" and not include_draft and not ids):
                continue
            if ids is not None and r.id not in ids:
                continue
            if fams is not None and r.family not in fams:
                continue
            if tg is not None and not (tg & set(r.focus_tags)):
                continue
            out.append(r)
        return out

    def fingerprint(self, rules: Iterable[Rule] | None = None) -> str:
        """SHA-256 over the selected rules' definitions, their templates and the shared views."""
        rules = sorted(rules if rules is not None else self.select(), key=lambda r: r.id)
        doc = {
            "rules": [dict(_rule_dict(r), template_sql=self.templates.get(r.template, "")) for r in rules],
            "views": self.views,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]

    def lint(self) -> list[str]:
        """Problems of the catalog, empty when it is clean."""
        problems: list[str] = []
        seen: dict[str, str] = {}
        retired_ids = {p.stem for p in (self.rules_dir / "catalog" / "deprecated").glob("*.yml")}
        for r in self.rules:
            where = f"{r.source}: {r.id}"
            if r.id in seen:
                problems.append(f"{where}: duplicate id (also in {seen[r.id]})")
            seen[r.id] = r.source
            if not _ID_RE.match(r.id):
                problems.append(f"{where}: id must be lower_snake_case")
            if r.family not in self.families:
                problems.append(f"{where}: unknown family {r.family!r}")
            elif not r.id.startswith(r.family):
                problems.append(f"{where}: id must start with its family ({r.family}_...)")
            if r.source and r.source != r.catalog_file:
                problems.append(f"{where}: a catalog file holds only the rules of the template it is named "
                                f"after; template {r.template!r} belongs in catalog/{r.catalog_file}")
            if r.template not in self.templates:
                problems.append(f"{where}: template {r.template!r} not in rules/templates")
            else:
                needed = set(_PARAM_RE.findall(self.templates[r.template]))
                missing = needed - set(r.params)
                unused = set(r.params) - needed
                if missing:
                    problems.append(f"{where}: parameters not bound: {sorted(missing)}")
                if unused:
                    problems.append(f"{where}: parameters the template does not use: {sorted(unused)}")
            if r.category not in CATEGORIES:
                problems.append(f"{where}: unknown category {r.category!r}")
            if r.severity not in SEVERITIES:
                problems.append(f"{where}: severity must be one of {SEVERITIES}")
            if r.status not in STATUSES:
                problems.append(f"{where}: status must be one of {STATUSES}")
            if not r.scope or set(r.scope) - set(SCOPES):
                problems.append(f"{where}: scope must be a subset of {SCOPES}")
            if set(r.focus_tags) - set(FOCUS_TAGS):
                problems.append(f"{where}: unknown focus tags {sorted(set(r.focus_tags) - set(FOCUS_TAGS))}")
            if not isinstance(r.version, int) or r.version < 1:
                problems.append(f"{where}: version must be a positive integer")
            if r.status == "active" and not (self.rules_dir / "regression" / r.id / "expected.csv").exists():
                problems.append(f"{where}: active rule without regression data rules/regression/{r.id}/")
        for rid in retired_ids & set(seen):
            problems.append(f"{rid}: id of a deprecated rule reused")
        return problems

    def entry(self, rule: Rule) -> tuple[Path, int, str]:
        """Where a rule is written: its catalog file, the entry's first line (1-based) and its YAML text."""
        path = self.rules_dir / "catalog" / rule.source
        lines = path.read_text(encoding="utf-8").splitlines()
        return (path, *_entry_lines(lines, rule.id))


def _entry_lines(lines: list[str], rule_id: str) -> tuple[int, str]:
    """The list item `- id: <rule_id>` of a catalog file's lines, up to the next line indented as little."""
    for start, line in enumerate(lines):
        m = _ITEM_RE.match(line)
        if m and m["id"] == rule_id:
            break
    else:
        raise KeyError(rule_id)
    indent = len(m["indent"])
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return start + 1, "\n".join(lines[start:end]) + "\n"


def _rule_dict(r: Rule) -> dict:
    return {"id": r.id, "version": r.version, "family": r.family, "template": r.template, "params": r.params,
            "category": r.category, "severity": r.severity, "status": r.status}


def load_catalog(rules_dir: Path | str | None = None) -> Catalog:
    rules_dir = Path(rules_dir) if rules_dir else REPO_ROOT / "rules"
    fam_doc = yaml.safe_load((rules_dir / "families.yml").read_text(encoding="utf-8"))["families"]
    families = {n: Family(n, d["grain"], d["partition"], d.get("label", n)) for n, d in fam_doc.items()}
    rules: list[Rule] = []
    for path in sorted((rules_dir / "catalog").glob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for raw in doc.get("rules") or []:
            missing = [k for k in REQUIRED_KEYS if k not in raw]
            if missing:
                raise ValueError(f"{path.name}: rule {raw.get('id', '?')} lacks {missing}")
            rules.append(Rule(
                id=raw["id"], version=raw["version"], family=raw["family"], template=raw["template"],
                name=raw["name"], category=raw["category"], severity=raw["severity"], status=raw["status"],
                scope=tuple(raw["scope"]), legal_basis=raw["legal_basis"], description=raw["description"],
                focus_tags=tuple(raw.get("focus_tags") or ()), false_positives=raw.get("false_positives", ""),
                params=dict(raw.get("params") or {}), source=path.name))
    templates = {p.stem: p.read_text(encoding="utf-8") for p in sorted((rules_dir / "templates").glob("*.sql"))}
    views = {p.stem: p.read_text(encoding="utf-8") for p in sorted((rules_dir / "views").glob("*.sql"))}
    return Catalog(rules_dir, families, rules, templates, views)
