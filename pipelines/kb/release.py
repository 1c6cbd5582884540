"""A knowledge-base release from imported points: the kb tables' rows (contract §3 shapes plus the national
kinds' columns), local additions merged over them, and the difference between two releases. Pure."""
from __future__ import annotations

import json
from collections import defaultdict

#: kb_hilist columns the national kinds add to contract §3 (read by the families of the new kinds)
NATIONAL_COLUMNS = ("insutype_only", "med_type_only", "second_line", "period_cnt_max", "period_days",
                    "herbal_never_paid", "herbal_not_alone", "internet_excluded", "pay_days_per_year")
#: where a release's row came from: the release and the batch/row of every knowledge point behind it
SOURCE_COLUMNS = ("kb_release", "kb_source")
#: several points on one code: the strictest limit wins; lists are joined; otherwise the first point's value
_COMBINE = {"age_min": max, "age_max": min, "hosp_lv_min": min, "max_cnt_per_day": min, "max_pay_days": min,
            "pay_days_per_year": min}
_JOIN = {"lmt_diag", "med_type_only"}
_LIST_TYPE = {"drug": "101", "herbal": "102", "service": "201", "service_pair": "201"}
PRECEDENCE = ("local > national: a local kb_hilist value replaces the national one column by column (a blank "
              "local value keeps the national one); a local kb_item_pair row replaces the national row of the same "
              "pair; kb_param is local only")


def source_label(p: dict) -> str:
    return f"第{p['batch']}批 {p['sheet']} 第{p['row']}行 序号{p['point_no']}"


def hilist_rows(points: list[dict], codes: list[dict], shapes: dict[str, str], release_id: str) -> list[dict]:
    """kb_hilist rows, one per code, from the mapped points (pairs go to kb_item_pair)."""
    by_point = {(p["batch"], p["point_no"]): p for p in points if p["status"] == "mapped"}
    rows: dict[str, dict] = {}
    sources: dict[str, list[str]] = defaultdict(list)
    for c in codes:
        p = by_point.get((c["batch"], c["point_no"]))
        if p is None or shapes[p["kind"]] == "service_pair":
            continue
        row = rows.setdefault(c["hilist_code"], {"hilist_code": c["hilist_code"], "hilist_name": c["name"] or p["name"],
                                                 "list_type": _LIST_TYPE[shapes[p["kind"]]]})
        if shapes[p["kind"]] == "herbal":
            row["med_chrgitm_type"] = "10"
        params = json.loads(p["params"])
        if "second_line" in params:
            row.setdefault("line_group", p["name"])   # the knowledge point: its first-line drugs are curated locally
        for k, v in params.items():
            if k in _JOIN and row.get(k):
                row[k] = "|".join(dict.fromkeys([*row[k].split("|"), *str(v).split("|")]))
            elif k in _COMBINE and row.get(k) is not None:
                row[k] = _COMBINE[k](row[k], v)
            else:
                row.setdefault(k, v)
        label = source_label(p)
        if label not in sources[c["hilist_code"]]:
            sources[c["hilist_code"]].append(label)
    for code, row in rows.items():
        row["kb_release"] = release_id
        row["kb_source"] = "; ".join(sources[code])
    return [rows[k] for k in sorted(rows)]


def validity(releases: list[dict]) -> dict[str, tuple]:
    """release_id -> (valid_from, valid_to) of every release: from its effective date to the next release's
    (None: in force until a later one). Two releases of one date: the later imported wins, the other is never
    in force. A claim is judged with the rows of the release whose interval holds its date."""
    ordered = sorted(releases, key=lambda r: (r["effective_date"], r["created_at"]))
    nxt = [r["effective_date"] for r in ordered[1:]] + [None]
    return {r["release_id"]: (r["effective_date"], to) for r, to in zip(ordered, nxt)}


def item_pair_rows(points: list[dict], codes: list[dict], release_id: str) -> list[dict]:
    """kb_item_pair rows of the mapped service pairs (batch 7): every A code × every B code, with the window
    read from 时间区间."""
    out: dict[tuple[str, str], dict] = {}
    by_point: dict[tuple, dict[str, list[str]]] = defaultdict(lambda: {"a": [], "b": []})
    for c in codes:
        if c["side"] in ("a", "b"):
            by_point[(c["batch"], c["point_no"])][c["side"]].append(c["hilist_code"])
    for p in points:
        if p["status"] != "mapped" or (p["batch"], p["point_no"]) not in by_point:
            continue
        params, sides = json.loads(p["params"]), by_point[(p["batch"], p["point_no"])]
        for a in sides["a"]:
            for b in sides["b"]:
                if a != b:
                    out.setdefault((a, b), {"hilist_code_a": a, "hilist_code_b": b, "relation": params["relation"],
                                            "window": params["window"], "kb_release": release_id,
                                            "kb_source": source_label(p)})
    return [out[k] for k in sorted(out)]


def merge_local(national: list[dict], local: list[dict], key: tuple[str, ...]) -> list[dict]:
    """Local rows over national ones (PRECEDENCE): column by column for kb_hilist, whole rows for pairs."""
    rows = {tuple(r[k] for k in key): dict(r) for r in national}
    for lr in local:
        k = tuple(lr[c] for c in key)
        base = rows.get(k)
        if base is None or len(key) > 1:
            rows[k] = dict(lr)
        else:
            merged = {**base, **{c: v for c, v in lr.items() if v not in (None, "")}}
            merged["kb_source"] = f"{lr.get('kb_source', 'local')} over {base.get('kb_source', '')}"
            rows[k] = merged
    return [rows[k] for k in sorted(rows)]


def _point_key(points: list[dict]) -> dict[tuple, dict]:
    """Points keyed by (batch, kind, name, occurrence): stable when a later edition renumbers 序号."""
    seen: dict[tuple, int] = defaultdict(int)
    out = {}
    for p in sorted(points, key=lambda p: (p["batch"], p["kind"], p["row"])):
        base = (p["batch"], p["kind"], p["name"])
        out[(*base, seen[base])] = p
        seen[base] += 1
    return out


def diff(a_points: list[dict], a_codes: list[dict], b_points: list[dict], b_codes: list[dict]) -> dict:
    """Points added, removed and changed (parameters, status, codes or text) from release A to release B."""
    def codes_of(codes):
        out = defaultdict(set)
        for c in codes:
            out[(c["batch"], c["point_no"])].add(f"{c['side']}{c['hilist_code']}")
        return out

    ca, cb = codes_of(a_codes), codes_of(b_codes)
    ka, kb = _point_key(a_points), _point_key(b_points)
    changed = []
    for k in sorted(set(ka) & set(kb)):
        pa_, pb_ = ka[k], kb[k]
        what = [f for f in ("params", "status", "basis", "logic") if pa_[f] != pb_[f]]
        if ca[(pa_["batch"], pa_["point_no"])] != cb[(pb_["batch"], pb_["point_no"])]:
            what.append("codes")
        if what:
            changed.append({"batch": k[0], "kind": k[1], "name": k[2], "changed": what,
                            "before": {f: pa_[f] for f in what if f != "codes"},
                            "after": {f: pb_[f] for f in what if f != "codes"},
                            "codes_added": sorted(cb[(pb_["batch"], pb_["point_no"])] - ca[(pa_["batch"], pa_["point_no"])]),
                            "codes_removed": sorted(ca[(pa_["batch"], pa_["point_no"])] - cb[(pb_["batch"], pb_["point_no"])])})
    pick = lambda d, keys: [{"batch": d[k]["batch"], "kind": d[k]["kind"], "name": d[k]["name"],  # noqa: E731
                             "row": d[k]["row"], "status": d[k]["status"]} for k in sorted(keys)]
    return {"added": pick(kb, set(kb) - set(ka)), "removed": pick(ka, set(ka) - set(kb)), "changed": changed}
