"""The period report (期间报告): figures from a pure function, then a printable HTML with embedded charts.

`period_figures` computes every number of the report from the period's cases (cases.current_cases),
last period's cases (for 回头看), the institutions and the period's draw; `render_html` lays them out
with matplotlib charts as embedded PNG. Chart labels are Chinese + English when a CJK font is
installed, English only otherwise (no tofu boxes).
"""
from __future__ import annotations

import base64
import io
from decimal import Decimal

import pandas as pd

from pipelines.workflow import precision as P
from pipelines.workflow import recheck as R
from pipelines.workflow.sampling import stratum_of
from pipelines.catalog import CATEGORY_EN

STRATUM_EN = {"三级": "Tertiary", "二级": "Secondary", "一级": "Primary", "无等级": "Ungraded"}
STATUS_EN = {"published": "Published", "confirmed": "Confirmed", "disputed": "Disputed", "upheld": "Upheld",
             "dismissed": "Dismissed", "closed": "Closed"}


def _dec(v) -> Decimal:
    return Decimal(str(v)) if v is not None and not pd.isna(v) else Decimal(0)


def _sum(values) -> Decimal:
    return sum((_dec(v) for v in values), Decimal(0)).quantize(Decimal("0.01"))


def confirmed_amount(case) -> Decimal:
    """Amount a positive case establishes: the upheld amount when verified on site, else the refund."""
    if case["outcome"] != "positive":
        return Decimal(0)
    return _dec(case["verdict_amount"] if case["verdict"] == "upheld" else case["answer_amount"])


def coverage_by_stratum(inst: pd.DataFrame, strata: dict, *, inspected: set, with_suspects: set,
                        answered: set) -> list[dict]:
    """Per stratum (the configured ones first, then any other found): institutions, how many have suspects,
    answered, were inspected, and the inspection coverage rate."""
    coverage = []
    for name in list(strata) + sorted(set(inst["stratum"]) - set(strata)):
        codes = set(inst.loc[inst["stratum"] == name, "fixmedins_code"])
        n_insp = len(codes & inspected)
        coverage.append({"stratum": name, "institutions": len(codes), "with_suspects": len(codes & with_suspects),
                         "answered": len(codes & answered), "inspected": n_insp,
                         "coverage_rate": (n_insp / len(codes)) if codes else None})
    return coverage


def findings_by_category(c: pd.DataFrame) -> list[dict]:
    """Per violation category, largest flagged amount first: findings, amounts flagged, confirmed (needs the
    `_confirmed_amount` column) and recovered, and positive outcomes."""
    by_category = []
    for cat, g in c.groupby("category", sort=True):
        by_category.append({"category": cat, "findings": len(g), "amount": _sum(g["amount"]),
                            "positive": int((g["outcome"] == "positive").sum()),
                            "confirmed_amount": _sum(g["_confirmed_amount"]),
                            "recovered_amount": _sum(g["recovered_amount"])})
    by_category.sort(key=lambda r: (-r["amount"], r["category"]))
    return by_category


def onsite_figures(verified: pd.DataFrame, inspected: set) -> dict:
    """On-site verification: institutions inspected, verified and with an upheld problem; items verified
    and upheld, and the two rates."""
    verified_inst = set(verified["fixmedins_code"])
    with_problems = set(verified.loc[verified["verdict"] == "upheld", "fixmedins_code"])
    n_upheld = int((verified["verdict"] == "upheld").sum())
    return {
        "institutions_inspected": len(inspected), "institutions_verified": len(verified_inst),
        "institutions_with_problems": len(with_problems),
        "discovery_rate": (len(with_problems) / len(verified_inst)) if verified_inst else None,
        "items_verified": len(verified), "items_upheld": n_upheld,
        "item_upheld_rate": (n_upheld / len(verified)) if len(verified) else None,
    }


def period_figures(cases: pd.DataFrame, *, period: str, institutions: pd.DataFrame, draws: pd.DataFrame,
                   previous_cases: pd.DataFrame | None = None, conf: dict, strata: dict) -> dict:
    """Every figure of the period report (see the module doc). Amounts are exact Decimals."""
    prec_conf = conf["precision"]
    inst = institutions.copy()
    inst["stratum"] = inst["hosp_lv"].map(lambda lv: stratum_of(lv, strata) or "无等级")
    verified = cases[cases["verdict"].notna()]
    inspected = set(verified["fixmedins_code"]) | set(draws["fixmedins_code"] if not draws.empty else [])
    with_suspects = set(cases["fixmedins_code"])
    answered = set(cases.loc[cases["answer"].notna(), "fixmedins_code"])
    total = len(inst)
    covered = len(set(inst["fixmedins_code"]) & inspected)

    c = cases.copy()
    c["_confirmed_amount"] = [confirmed_amount(r) for r in c.to_dict("records")] if not c.empty else []
    prec = P.rule_precision(c, min_precision=float(prec_conf["min_precision"]),
                            min_decided=int(prec_conf["min_decided"]))
    recheck_rows = pd.DataFrame(columns=R.COLUMNS)
    if previous_cases is not None:
        recheck_rows = R.recheck(previous_cases, cases)
    return {
        "period": period,
        "institutions": {"total": total, "inspected": covered, "coverage_rate": covered / total if total else None},
        "coverage": coverage_by_stratum(inst, strata, inspected=inspected, with_suspects=with_suspects,
                                        answered=answered),
        "findings": {"total": len(c), "institutions": len(with_suspects)},
        "by_category": findings_by_category(c),
        "status_counts": {s: int((c["status"] == s).sum()) for s in STATUS_EN},
        "outcome_counts": {o: int((c["outcome"] == o).sum()) for o in ("positive", "negative", "pending", "unanswered")},
        "amounts": {"flagged": _sum(c["amount"]), "confirmed": _sum(c["_confirmed_amount"]),
                    "recovered": _sum(c["recovered_amount"])},
        "onsite": onsite_figures(verified, inspected),
        "precision": prec.to_dict("records"),
        "rules_to_review": prec.loc[prec["review"], "rule_id"].tolist(),
        "recheck": recheck_rows.to_dict("records"),
        "not_rectified": R.not_rectified(recheck_rows) if not recheck_rows.empty else [],
        "draw_seed": int(draws["seed"].iloc[0]) if not draws.empty else None,
    }


# ------------------------------------------------------------------ rendering

def _label(zh: str, en: str, cjk: bool) -> str:
    return f"{zh} {en}" if cjk else en


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def charts(fig_data: dict, font: str | None) -> dict[str, str]:
    """Base64 PNG charts of the figures; Chinese labels only when `font` (a CJK family) is given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cjk = bool(font)
    rc = {"font.family": [font, "sans-serif"]} if cjk else {}
    out = {}
    with plt.rc_context(rc):
        cov = fig_data["coverage"]
        fig, ax = plt.subplots(figsize=(6, 3))
        names = [_label(r["stratum"], STRATUM_EN.get(r["stratum"], ""), cjk) if cjk
                 else STRATUM_EN.get(r["stratum"], r["stratum"]) for r in cov]
        ax.bar(names, [100 * (r["coverage_rate"] or 0) for r in cov], color="#4472c4")
        ax.set_ylabel(_label("覆盖率 %", "coverage %", cjk))
        ax.set_title(_label("现场检查覆盖率", "On-site coverage by level", cjk))
        out["coverage"] = _png(fig)

        cats = fig_data["by_category"]
        fig, ax = plt.subplots(figsize=(7, max(2.5, 0.45 * len(cats) + 1)))
        labels = [(_label(r["category"], CATEGORY_EN.get(r["category"], ""), cjk) if cjk
                   else CATEGORY_EN.get(r["category"], "Other")) for r in cats]
        ax.barh(labels[::-1], [float(r["amount"]) for r in cats][::-1], color="#ed7d31")
        ax.set_xlabel(_label("涉及金额（元）", "amount flagged (CNY)", cjk))
        ax.set_title(_label("按违规类别", "Findings by category", cjk))
        out["categories"] = _png(fig)

        am = fig_data["amounts"]
        fig, ax = plt.subplots(figsize=(6, 3))
        keys = [("flagged", "疑点金额", "Flagged"), ("confirmed", "确认金额", "Confirmed"),
                ("recovered", "追回金额", "Recovered")]
        ax.bar([_label(z, e, cjk) for _, z, e in keys], [float(am[k]) for k, _, _ in keys],
               color=["#a5a5a5", "#ffc000", "#70ad47"])
        ax.set_ylabel("CNY")
        ax.set_title(_label("金额", "Amounts", cjk))
        out["amounts"] = _png(fig)

        prec = [r for r in fig_data["precision"] if r["precision"] is not None and not pd.isna(r["precision"])]
        if prec:
            fig, ax = plt.subplots(figsize=(7, max(2.5, 0.4 * len(prec) + 1)))
            ax.barh([r["rule_id"] for r in prec][::-1], [100 * r["precision"] for r in prec][::-1],
                    color=["#c00000" if r["review"] else "#4472c4" for r in prec][::-1])
            ax.set_xlim(0, 100)
            ax.set_xlabel(_label("精确率 %", "precision %", cjk))
            ax.set_title(_label("规则精确率", "Rule precision", cjk))
            out["precision"] = _png(fig)
    return out


def _fmt(v, pct=False) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "–"
    if pct:
        return f"{100 * v:.1f}%"
    if isinstance(v, Decimal):
        return f"{v:,.2f}"
    return str(v)


def render_html(fig_data: dict, chart_png: dict[str, str], *, generated_at, names: dict[str, str]) -> str:
    from jinja2 import Environment

    env = Environment(autoescape=True)
    env.filters["fmt"] = _fmt
    env.filters["pct"] = lambda v: _fmt(v, pct=True)
    return env.from_string(_TEMPLATE).render(f=fig_data, charts=chart_png, generated_at=generated_at,
                                             names=names, STRATUM_EN=STRATUM_EN, CATEGORY_EN=CATEGORY_EN,
                                             STATUS_EN=STATUS_EN)


_TEMPLATE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>{{ f.period }} 医保基金监管期间报告 Supervision report</title>
<style>
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;border-bottom:1px solid #999;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #aaa;padding:3px 8px;text-align:right}
th{background:#eee}td.l,th.l{text-align:left}.note{color:#555;font-size:.9em}img{max-width:100%}
.warn{color:#c00000;font-weight:bold}
@media print{h2{page-break-after:avoid}table,img{page-break-inside:avoid}body{margin:0}}
</style></head><body>
<h1>{{ f.period }} 医保基金监管期间报告<br><small>Medical-insurance fund supervision report, period {{ f.period }}</small></h1>
<p class="note">生成时间 Generated {{ generated_at }}{% if f.draw_seed is not none %} · 双随机种子 draw seed {{ f.draw_seed }}{% endif %}</p>

<h2>一、检查覆盖 Institutions covered</h2>
<p>机构总数 Institutions: {{ f.institutions.total }} · 现场检查 inspected on site: {{ f.institutions.inspected }}
 · 覆盖率 coverage: {{ f.institutions.coverage_rate|pct }}</p>
<table><tr><th class="l">医院等级 Level</th><th>机构数 Institutions</th><th>有疑点 With findings</th>
<th>已反馈 Answered</th><th>现场检查 Inspected</th><th>覆盖率 Coverage</th></tr>
{% for r in f.coverage %}<tr><td class="l">{{ r.stratum }} {{ STRATUM_EN.get(r.stratum, '') }}</td><td>{{ r.institutions }}</td>
<td>{{ r.with_suspects }}</td><td>{{ r.answered }}</td><td>{{ r.inspected }}</td><td>{{ r.coverage_rate|pct }}</td></tr>{% endfor %}
</table>
{% if charts.coverage %}<img alt="coverage" src="data:image/png;base64,{{ charts.coverage }}">{% endif %}

<h2>二、疑点与违规类别 Findings by category</h2>
<p>疑点 Findings: {{ f.findings.total }}（{{ f.findings.institutions }} 家机构 institutions）</p>
<table><tr><th class="l">违规类别 Category</th><th>疑点数 Findings</th><th>涉及金额 Flagged</th><th>确认/属实 Positive</th>
<th>确认金额 Confirmed</th><th>追回金额 Recovered</th></tr>
{% for r in f.by_category %}<tr><td class="l">{{ r.category }} {{ CATEGORY_EN.get(r.category, '') }}</td><td>{{ r.findings }}</td>
<td>{{ r.amount|fmt }}</td><td>{{ r.positive }}</td><td>{{ r.confirmed_amount|fmt }}</td><td>{{ r.recovered_amount|fmt }}</td></tr>{% endfor %}
</table>
{% if charts.categories %}<img alt="categories" src="data:image/png;base64,{{ charts.categories }}">{% endif %}

<h2>三、金额 Amounts flagged / confirmed / recovered</h2>
<table><tr><th class="l">疑点金额 Flagged</th><td>{{ f.amounts.flagged|fmt }}</td></tr>
<tr><th class="l">确认金额 Confirmed (refund or upheld)</th><td>{{ f.amounts.confirmed|fmt }}</td></tr>
<tr><th class="l">追回金额 Recovered</th><td>{{ f.amounts.recovered|fmt }}</td></tr></table>
<table><tr>{% for s, n in f.status_counts.items() %}<th>{{ s }} {{ STATUS_EN[s] }}</th>{% endfor %}</tr>
<tr>{% for s, n in f.status_counts.items() %}<td>{{ n }}</td>{% endfor %}</tr></table>
{% if charts.amounts %}<img alt="amounts" src="data:image/png;base64,{{ charts.amounts }}">{% endif %}

<h2>四、现场检查问题发现率 On-site problem-discovery rate</h2>
<table><tr><th class="l">检查机构 Institutions inspected (drawn or verified)</th><td>{{ f.onsite.institutions_inspected }}</td></tr>
<tr><th class="l">已出核查结论 Institutions with verdicts</th><td>{{ f.onsite.institutions_verified }}</td></tr>
<tr><th class="l">发现问题 Institutions with upheld problems</th><td>{{ f.onsite.institutions_with_problems }}</td></tr>
<tr><th class="l">问题发现率 Discovery rate</th><td>{{ f.onsite.discovery_rate|pct }}</td></tr>
<tr><th class="l">核查条目 Items verified / upheld</th><td>{{ f.onsite.items_verified }} / {{ f.onsite.items_upheld }}
 ({{ f.onsite.item_upheld_rate|pct }})</td></tr></table>

<h2>五、规则精确率 Rules' precision</h2>
<p class="note">精确率 = (确认+属实) / 已定性（确认、属实、不属实）；下限把未核查的申诉计为误报。
Precision = (confirmed + upheld) / decided; the floor counts open disputes as false positives.</p>
<table><tr><th class="l">规则 Rule</th><th>疑点 Findings</th><th>确认 Confirmed</th><th>属实 Upheld</th><th>不属实 Dismissed</th>
<th>申诉待核 Pending</th><th>未反馈 Unanswered</th><th>精确率 Precision</th><th>下限 Floor</th><th class="l">复核 Review</th></tr>
{% for r in f.precision %}<tr><td class="l">{{ r.rule_id }}</td><td>{{ r.findings }}</td><td>{{ r.confirmed }}</td>
<td>{{ r.upheld }}</td><td>{{ r.negative }}</td><td>{{ r.pending }}</td><td>{{ r.unanswered }}</td>
<td>{{ r.precision|pct }}</td><td>{{ r.precision_floor|pct }}</td>
<td class="l">{% if r.review %}<span class="warn">需复核 review</span>{% endif %}</td></tr>{% endfor %}
</table>
{% if charts.precision %}<img alt="precision" src="data:image/png;base64,{{ charts.precision }}">{% endif %}

<h2>六、回头看 Institutions to re-check</h2>
{% if f.recheck %}<table><tr><th class="l">机构 Institution</th><th class="l">规则 Rule</th><th>上期问题 Problems before</th>
<th>本期疑点 Hits now</th><th>本期金额 Amount now</th><th class="l">整改 Rectified</th></tr>
{% for r in f.recheck %}<tr><td class="l">{{ r.fixmedins_code }} {{ names.get(r.fixmedins_code, '') }}</td><td class="l">{{ r.rule_id }}</td>
<td>{{ r.problems_before }}</td><td>{{ r.hits_now }}</td><td>{{ r.amount_now|fmt }}</td>
<td class="l">{% if r.rectified %}已整改 yes{% else %}<span class="warn">未整改 no</span>{% endif %}</td></tr>{% endfor %}
</table>
<p>需复查机构 To re-check: {% for c in f.not_rectified %}{{ c }} {{ names.get(c, '') }}{% if not loop.last %}、{% endif %}{% else %}无 none{% endfor %}</p>
{% else %}<p>上期无确认问题 No confirmed problem last period.</p>{% endif %}
</body></html>"""
