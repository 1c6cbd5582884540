"""双随机一公开: draw inspection targets and inspectors at random, reproducibly, and publish the result.

The draw is a pure function of (institutions, inspectors, seed, config):
- institutions are sorted by fixmedins_code and split into strata by hospital level (conf
  `sampling.strata`: 三级 01–04, 二级 05–07, 一级 08–10, 无等级 11);
- one `numpy.random.Generator(PCG64(seed))` draws, stratum by stratum in the configured order,
  n = max(ceil(rate × N), min_targets) institutions without replacement (rate raised to any coverage
  target the stratum belongs to, so `coverage` holds by construction — and is checked);
- then, target by target (in stratum order, then code order), a team of `team_size` inspectors from
  the register sorted by inspector_id, never one linked to the institution: the same generator permutes
  the eligible inspectors and the least-loaded come first (ties in permutation order), so the load
  spreads evenly; too few eligible inspectors is an error naming the institution.
Anyone with the same inputs and seed re-draws the same targets and teams.
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.contract.spreadsheet import neutralise


class SamplingError(ValueError):
    pass


@dataclass(frozen=True)
class Inspector:
    inspector_id: str
    name: str
    unit: str
    linked: frozenset[str] = frozenset()


@dataclass
class Draw:
    seed: int
    targets: pd.DataFrame        # stratum, fixmedins_code, fixmedins_name, hosp_lv, inspector_ids/names/units
    strata: list[dict]           # per stratum: institutions, rate, drawn
    coverage: list[dict]         # per coverage target: label, institutions, drawn, rate, min_rate, met
    load: dict[str, int] = field(default_factory=dict)


INSPECTOR_FIELDS = ("inspector_id", "name", "unit", "linked_institutions")
_INSPECTOR_LABELS = {"检查人员编号": "inspector_id", "执法人员编号": "inspector_id", "姓名": "name",
                     "单位": "unit", "所在单位": "unit", "关联机构": "linked_institutions"}


def parse_inspectors(data: bytes) -> list[Inspector]:
    """The register CSV (inspector_id, name, unit, linked_institutions `|`-separated), UTF-8 or GB18030."""
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise SamplingError("inspector register: not UTF-8 or GB18030 text / 检查人员名录编码无法识别")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        raise SamplingError("inspector register is empty / 检查人员名录为空")
    header = [_INSPECTOR_LABELS.get(h.strip(), h.strip().lower()) for h in rows[0]]
    missing = [f for f in INSPECTOR_FIELDS[:2] if f not in header]
    if missing:
        raise SamplingError(f"inspector register lacks columns {missing} / 检查人员名录缺少列")
    out, seen = [], set()
    for line, r in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in r):
            continue
        rec = {h: (r[i].strip() if i < len(r) else "") for i, h in enumerate(header)}
        iid = rec.get("inspector_id", "")
        if not iid:
            raise SamplingError(f"inspector register line {line}: inspector_id missing / 缺少检查人员编号")
        if iid in seen:
            raise SamplingError(f"inspector register line {line}: inspector_id {iid} repeated / 编号重复")
        seen.add(iid)
        linked = frozenset(x.strip() for x in rec.get("linked_institutions", "").split("|") if x.strip())
        out.append(Inspector(iid, rec.get("name", ""), rec.get("unit", ""), linked))
    if not out:
        raise SamplingError("inspector register has no inspector / 检查人员名录为空")
    return sorted(out, key=lambda i: i.inspector_id)


def stratum_of(hosp_lv: str | None, strata: dict) -> str | None:
    lv = str(hosp_lv or "").strip()
    lv = lv.zfill(2) if lv.isdigit() else lv
    for name, spec in strata.items():
        if lv in [str(x).zfill(2) for x in spec["levels"]]:
            return name
    return None


def _effective_rates(conf: dict) -> dict[str, float]:
    rates = {name: float(spec.get("rate", 0)) for name, spec in conf["strata"].items()}
    for target in conf.get("coverage") or []:
        for name in target["strata"]:
            if name not in rates:
                raise SamplingError(f"coverage target names unknown stratum {name!r}")
            rates[name] = max(rates[name], float(target["min_rate"]))
    return rates


def canonical_institutions(institutions: pd.DataFrame) -> pd.DataFrame:
    df = institutions[["fixmedins_code", "fixmedins_name", "hosp_lv"]].copy()
    df["fixmedins_code"] = df["fixmedins_code"].astype(str)
    df["hosp_lv"] = df["hosp_lv"].map(lambda v: str(v).zfill(2) if str(v).isdigit() else str(v))
    dup = df["fixmedins_code"][df["fixmedins_code"].duplicated()]
    if not dup.empty:
        raise SamplingError(f"institutions listed twice: {sorted(set(dup))[:5]} / 机构重复")
    return df.sort_values("fixmedins_code").reset_index(drop=True)


def draw(institutions: pd.DataFrame, inspectors: list[Inspector], seed: int, conf: dict) -> Draw:
    """Targets and teams for one seed (see the module doc)."""
    if seed is None or int(seed) < 0:
        raise SamplingError("seed must be a non-negative integer / 随机种子须为非负整数")
    inst = canonical_institutions(institutions)
    strata_conf = conf["strata"]
    inst["stratum"] = inst["hosp_lv"].map(lambda lv: stratum_of(lv, strata_conf))
    unplaced = inst[inst["stratum"].isna()]
    if not unplaced.empty:
        raise SamplingError(f"institutions with a hosp_lv outside every stratum: "
                            f"{unplaced['fixmedins_code'].tolist()[:5]} / 医院等级不在分层内")
    team_size = int(conf.get("team_size", 2))
    rates = _effective_rates(conf)
    rng = np.random.Generator(np.random.PCG64(int(seed)))

    chosen, strata_rows = [], []
    for name, spec in strata_conf.items():
        pool = inst[inst["stratum"] == name].reset_index(drop=True)
        n_pool = len(pool)
        n = min(n_pool, max(math.ceil(rates[name] * n_pool - 1e-9), int(spec.get("min_targets", 0))))
        picked = sorted(rng.choice(n_pool, size=n, replace=False).tolist()) if n else []
        chosen.append(pool.iloc[picked])
        strata_rows.append({"stratum": name, "institutions": n_pool, "rate": rates[name], "drawn": n})
    targets = pd.concat(chosen, ignore_index=True) if chosen else inst.iloc[0:0]

    inspectors = sorted(inspectors, key=lambda i: i.inspector_id)
    load = {i.inspector_id: 0 for i in inspectors}
    teams = []
    for code in targets["fixmedins_code"]:
        eligible = [i for i in inspectors if code not in i.linked]
        if len(eligible) < team_size:
            raise SamplingError(
                f"institution {code}: only {len(eligible)} inspectors are not linked to it, a team needs "
                f"{team_size} / 机构{code}可选检查人员不足{team_size}人（回避后）")
        rank = np.argsort(rng.permutation(len(eligible))).tolist()   # position of each inspector in the shuffle
        order = sorted(range(len(eligible)), key=lambda k: (load[eligible[k].inspector_id], rank[k]))
        team = sorted((eligible[k] for k in order[:team_size]), key=lambda i: i.inspector_id)
        for i in team:
            load[i.inspector_id] += 1
        teams.append(team)
    targets = targets.assign(
        inspector_ids=["|".join(i.inspector_id for i in t) for t in teams],
        inspector_names=["|".join(i.name for i in t) for t in teams],
        inspector_units=["|".join(i.unit for i in t) for t in teams],
    )
    coverage = coverage_of(inst, targets, conf)
    unmet = [c for c in coverage if not c["met"]]
    if unmet:
        raise SamplingError("coverage target not met: " + "; ".join(
            f"{c['label']} {c['drawn']}/{c['institutions']} < {c['min_rate']:.0%}" for c in unmet))
    return Draw(int(seed), targets.reset_index(drop=True), strata_rows, coverage, load)


def coverage_of(inst: pd.DataFrame, targets: pd.DataFrame, conf: dict) -> list[dict]:
    out = []
    for t in conf.get("coverage") or []:
        total = int(inst["stratum"].isin(t["strata"]).sum())
        drawn = int(targets["stratum"].isin(t["strata"]).sum())
        rate = drawn / total if total else 1.0
        out.append({"label": t.get("label") or "+".join(t["strata"]), "strata": list(t["strata"]),
                    "institutions": total, "drawn": drawn, "rate": rate, "min_rate": float(t["min_rate"]),
                    "met": rate + 1e-12 >= float(t["min_rate"])})
    return out


# ------------------------------------------------------------------ the public record

def institutions_sha256(institutions: pd.DataFrame) -> str:
    """Hash of the draw's institution input, independent of row order and storage."""
    df = canonical_institutions(institutions)
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    return hashlib.sha256(buf.getvalue().encode("utf-8")).hexdigest()


def inspectors_sha256(inspectors: list[Inspector]) -> str:
    lines = ["inspector_id,name,unit,linked_institutions"] + [
        ",".join([i.inspector_id, i.name, i.unit, "|".join(sorted(i.linked))]) for i in inspectors]
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


PUBLIC_COLUMNS = (("no", "序号"), ("period", "抽查期间"), ("fixmedins_code", "定点医药机构编号"),
                  ("fixmedins_name", "定点医药机构名称"), ("stratum", "医院等级分层"), ("hosp_lv", "医院等级代码"),
                  ("inspector_names", "检查人员"), ("inspector_units", "检查人员单位"))


def _public_table(d: Draw, period: str) -> pd.DataFrame:
    t = d.targets.assign(no=range(1, len(d.targets) + 1), period=period)
    t["inspector_names"] = t["inspector_names"].str.replace("|", "、", regex=False)
    t["inspector_units"] = t["inspector_units"].str.replace("|", "、", regex=False)
    return t[[c for c, _ in PUBLIC_COLUMNS]].rename(columns=dict(PUBLIC_COLUMNS))


def public_list(d: Draw, period: str) -> pd.DataFrame:
    """The list to publish (公开) as a spreadsheet takes it: Chinese headers, one row per target; text a
    spreadsheet would run as a formula (an institution's name from its own data) carries a leading `'`
    (contract.spreadsheet.neutralise), the sequence number stays a number."""
    return _public_table(d, period).map(neutralise)


def public_html(d: Draw, period: str, record: dict) -> str:
    from jinja2 import Environment

    tpl = Environment(autoescape=True).from_string(_HTML)
    return tpl.render(period=period, table=_public_table(d, period), record=record, strata=d.strata,
                      coverage=d.coverage)


def record_of(d: Draw, *, period: str, conf: dict, inputs: dict, drawn_at) -> dict:
    """The JSON record: seed, method, inputs' hashes, config, coverage and the result."""
    return {
        "period": period, "seed": d.seed, "drawn_at": drawn_at.isoformat(),
        "method": "numpy.random.Generator(PCG64(seed)); institutions sorted by fixmedins_code, drawn stratum "
                  "by stratum without replacement; inspectors sorted by inspector_id, linked ones excluded, "
                  "permuted, least-loaded first (pipelines/workflow/sampling.py)",
        "numpy_version": np.__version__, "inputs": inputs, "config": conf, "strata": d.strata,
        "coverage": d.coverage,
        "targets": d.targets[["fixmedins_code", "stratum", "inspector_ids"]].to_dict("records"),
    }


_HTML = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>{{ period }} 双随机抽查名单 Random inspection list</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #999;
padding:4px 8px}th{background:#eee}.small{color:#555;font-size:.9em}</style></head><body>
<h1>{{ period }} 年度医保基金双随机抽查名单</h1>
<p class="small">Random inspection list (双随机一公开) — seed 随机种子 <b>{{ record.seed }}</b>,
drawn 抽取时间 {{ record.drawn_at }}. 输入数据指纹 Input hashes:
{% for k, v in record.inputs.items() %}{{ k }} {{ v.sha256[:16] }}… {% endfor %}</p>
<table><tr>{% for c in table.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for r in table.itertuples(index=False) %}<tr>{% for v in r %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}
</table>
<h2>分层与覆盖 Strata and coverage</h2>
<table><tr><th>分层 Stratum</th><th>机构数 Institutions</th><th>抽取比例 Rate</th><th>抽取数 Drawn</th></tr>
{% for s in strata %}<tr><td>{{ s.stratum }}</td><td>{{ s.institutions }}</td><td>{{ '%.0f%%' % (s.rate*100) }}</td>
<td>{{ s.drawn }}</td></tr>{% endfor %}
{% for c in coverage %}<tr><td>{{ c.label }}</td><td>{{ c.institutions }}</td>
<td>≥ {{ '%.0f%%' % (c.min_rate*100) }}</td><td>{{ c.drawn }} ({{ '%.1f%%' % (c.rate*100) }})</td></tr>{% endfor %}
</table>
<p class="small">任何人使用相同输入与随机种子可复现本结果 Anyone re-drawing with the same inputs and seed gets the
same list (numpy PCG64).</p></body></html>"""
