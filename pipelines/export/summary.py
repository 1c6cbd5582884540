"""The package's summary: figures by category, month and rule, charts (matplotlib, CJK font when one is
installed) and the bilingual HTML page."""
from __future__ import annotations

import base64
import io
from collections import OrderedDict
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence


from pipelines.contract import (SEVERITY_LABELS)
from pipelines.catalog import CATEGORY_EN
from pipelines.export.records import PACKAGE_FILES, PackageInfo, text_of, total_amount

CJK_FONT_HINTS = ("Noto Sans CJK", "Noto Serif CJK", "Source Han", "WenQuanYi", "SimHei", "SimSun",
                  "Microsoft YaHei", "PingFang", "Hiragino", "AR PL", "Droid Sans Fallback", "Sarasa")

# ------------------------------------------------------------------------------------------ summary

def summarise(records: Sequence[Mapping], rules: Mapping[str, Mapping]) -> dict:
    """Counts and amounts by category, month, rule and severity (exact Decimal sums)."""
    def group(key) -> list[dict]:
        acc: dict = OrderedDict()
        for r in records:
            k = key(r)
            hits, amt = acc.get(k, (0, Decimal("0.00")))
            acc[k] = (hits + 1, amt + (r["amount"] or Decimal("0")))
        return [{"key": k, "hits": h, "amount": a} for k, (h, a) in acc.items()]

    by_category = sorted(group(lambda r: r["category"] or ""), key=lambda g: (-g["amount"], g["key"]))
    for g in by_category:
        g["label_en"] = CATEGORY_EN.get(g["key"], "")
    by_month = sorted(group(lambda r: r["period"]), key=lambda g: g["key"])
    by_rule = sorted(group(lambda r: r["rule_id"]), key=lambda g: (-g["amount"], g["key"]))
    for g in by_rule:
        info = rules.get(g["key"]) or {}
        sample = next(r for r in records if r["rule_id"] == g["key"])
        g.update(name=sample["rule_name"], category=sample["category"],
                 severity=SEVERITY_LABELS.get(sample["severity"], sample["severity"]),
                 legal_basis=info.get("legal_basis", ""))
    by_severity = group(lambda r: r["severity"])
    for g in by_severity:
        g["label"] = SEVERITY_LABELS.get(g["key"], g["key"])
    top = sorted(records, key=lambda r: (-(r["amount"] or 0), r["suspect_id"]))[:10]
    return {
        "hits": len(records),
        "amount": total_amount(records),
        "patients": len({r["psn_no"] for r in records if r["psn_no"]}),
        "visits": len({r["mdtrt_id"] for r in records if r["mdtrt_id"]}),
        "rules": len(by_rule),
        "by_category": by_category, "by_month": by_month, "by_rule": by_rule, "by_severity": by_severity,
        "top": top,
    }


@lru_cache(maxsize=1)
def find_cjk_font() -> str | None:
    """Family name of an installed font that draws Chinese (医疗), or None (charts then use English labels)."""
    import matplotlib
    from matplotlib import font_manager, ft2font
    bundled = str(Path(matplotlib.get_data_path()).resolve())
    fonts = sorted(font_manager.fontManager.ttflist,
                   key=lambda f: not any(h.lower() in f.name.lower() for h in CJK_FONT_HINTS))
    for f in fonts:
        # matplotlib's own fonts draw no Chinese; its "Last Resort" font maps every character to a box
        if "last resort" in f.name.lower() or str(Path(f.fname).resolve()).startswith(bundled):
            continue
        try:
            face = ft2font.FT2Font(f.fname)
        except Exception:  # unreadable font file: skip it
            continue
        if all(face.get_char_index(ord(ch)) for ch in "医疗疑点"):
            return f.name
    return None


def _chart_label(category: str, i: int, cjk: bool) -> str:
    if cjk:
        return category or "-"
    en = CATEGORY_EN.get(category)
    if en:
        return en
    return category if category.isascii() and category else f"category {i + 1}"


def build_charts(summary: Mapping, font: str | None) -> dict[str, bytes]:
    """PNG charts: hits and amounts by category, by month. Chinese labels only when `font` draws them."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not summary["hits"]:
        return {}
    cjk = font is not None
    t = (lambda zh, en: f"{zh} {en}") if cjk else (lambda zh, en: en)
    rc = {"font.family": [font, "DejaVu Sans"] if cjk else ["DejaVu Sans"], "axes.unicode_minus": False}
    charts: dict[str, bytes] = {}
    with matplotlib.rc_context(rc):
        cats = list(reversed(summary["by_category"]))
        labels = [_chart_label(g["key"], i, cjk) for i, g in enumerate(cats)]
        fig = Figure(figsize=(10, 1.2 + 0.45 * len(cats)), layout="constrained")
        FigureCanvasAgg(fig)
        ax1, ax2 = fig.subplots(1, 2, sharey=True)
        ax1.barh(labels, [g["hits"] for g in cats], color="#4472C4")
        ax1.set_title(t("疑点数", "Suspects"))
        ax2.barh(labels, [float(g["amount"]) for g in cats], color="#ED7D31")
        ax2.set_title(t("涉及金额(元)", "Amount (CNY)"))
        fig.suptitle(t("按违规类别", "By category"))
        charts["by_category"] = _png(fig)

        months = summary["by_month"]
        fig = Figure(figsize=(10, 3.6), layout="constrained")
        FigureCanvasAgg(fig)
        ax1, ax2 = fig.subplots(1, 2)
        xs = [g["key"] for g in months]
        ax1.bar(xs, [g["hits"] for g in months], color="#4472C4")
        ax1.set_title(t("疑点数", "Suspects"))
        ax2.bar(xs, [float(g["amount"]) for g in months], color="#ED7D31")
        ax2.set_title(t("涉及金额(元)", "Amount (CNY)"))
        for ax in (ax1, ax2):
            ax.tick_params(axis="x", rotation=45 if len(xs) > 4 else 0)
        fig.suptitle(t("按月份", "By month"))
        charts["by_month"] = _png(fig)
    return charts


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def _template():
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = lambda v: f"{Decimal(v):,.2f}" if v is not None else ""
    env.filters["ts"] = lambda v: text_of("event_time", v)
    return env.get_template("summary.html.j2")


def build_html(summary: Mapping, charts: Mapping[str, bytes], info: PackageInfo, run_ids: Sequence[str],
               fingerprints: Sequence[str], font: str | None) -> str:
    images = {k: base64.b64encode(v).decode("ascii") for k, v in charts.items()}
    return _template().render(
        s=summary, info=info, images=images, run_ids=run_ids, fingerprints=fingerprints, font=font,
        files=PACKAGE_FILES, category_en=CATEGORY_EN)
