"""`fundguard sample --lake DIR --period 2023 --seed N --inspectors FILE --out DIR`: 双随机一公开.

Draws targets from silver/fixmedins and teams from the inspector register, writes the public list
(CSV + HTML, Chinese headers) and a JSON record (seed, inputs' hashes, config, result) to --out, and
appends the draw to gold/inspection_draws. With `--risk-top N`, also the 重点检查 list: the N riskiest
institutions of the year from gold/institution_risk (`fundguard analyze`), as `<stem>_risk.csv` with Chinese
and English headers; the random draw is unchanged by it.

    fundguard sample --lake data/lake --period 2023 --seed 20240301 --inspectors inspectors.csv --out draw
    fundguard sample ... --risk-top 20

Exit codes: 0 drawn; 2 bad input, or the draw is impossible (reason printed).
"""
from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

from pipelines.commands import _common as _cli


def add_arguments(p) -> None:
    _cli.add_lake(p)
    p.add_argument("--period", required=True, help="the inspection year, YYYY")
    p.add_argument("--seed", required=True, type=int, help="the recorded random seed 随机种子")
    p.add_argument("--inspectors", required=True, type=Path, help="inspector register CSV 检查人员名录")
    p.add_argument("--out", required=True, type=Path, help="folder for the public list and the record")
    p.add_argument("--at", help="time of the draw (ISO, UTC); default now")
    p.add_argument("--risk-top", type=int, default=None, metavar="N",
                   help="also write the N riskiest institutions (gold/institution_risk) as <stem>_risk.csv 重点检查")


def run(args) -> int:
    import pyarrow as pa

    from pipelines import config
    from pipelines.app.risk_list import NoRiskRanking, risk_top
    from pipelines.workflow import sampling, store

    lake = _cli.lake_of(args)
    conf = config.load("workflow")["sampling"]
    try:
        if not lake.exists(store.FIXMEDINS):
            raise sampling.SamplingError(f"no {store.FIXMEDINS} in {lake.root}: load the institutions first")
        raw = args.inspectors.read_bytes()
        inspectors = sampling.parse_inspectors(raw)
        inst = store.read_fixmedins(lake)
        result = sampling.draw(inst, inspectors, args.seed, conf)
        risk = (risk_top(lake, args.period, args.risk_top, inst, set(result.targets["fixmedins_code"]))
                if args.risk_top is not None else None)
    except (sampling.SamplingError, NoRiskRanking, FileNotFoundError) as exc:
        return _cli.fail("sample", str(exc))
    drawn_at = _cli.parse_clock(args.at)
    inputs = {
        "fixmedins": {"table": store.FIXMEDINS, "delta_version": lake.version(store.FIXMEDINS),
                      "rows": len(inst), "sha256": sampling.institutions_sha256(inst)},
        "inspectors": {"file": args.inspectors.name, "rows": len(inspectors),
                       "file_sha256": hashlib.sha256(raw).hexdigest(),
                       "sha256": sampling.inspectors_sha256(inspectors)},
    }
    record = sampling.record_of(result, period=args.period, conf=conf, inputs=inputs, drawn_at=drawn_at)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    stem = f"inspection_{args.period}_seed{args.seed}"
    sampling.public_list(result, args.period).to_csv(out / f"{stem}.csv", index=False, encoding="utf-8-sig")
    (out / f"{stem}.html").write_text(sampling.public_html(result, args.period, record), encoding="utf-8")
    (out / f"{stem}.json").write_text(json.dumps(record, ensure_ascii=False, indent=2, default=str),
                                      encoding="utf-8")
    if risk is not None:
        risk.to_csv(out / f"{stem}_risk.csv", index=False, encoding="utf-8-sig")
    t = result.targets
    draw_id = uuid.uuid4().hex
    store.append_draw(lake, pa.table({
        "draw_id": [draw_id] * len(t), "period": [args.period] * len(t), "seed": [args.seed] * len(t),
        "fixmedins_code": t["fixmedins_code"].tolist(), "fixmedins_name": t["fixmedins_name"].tolist(),
        "hosp_lv": t["hosp_lv"].tolist(), "stratum": t["stratum"].tolist(),
        "inspector_ids": t["inspector_ids"].tolist(), "inspector_names": t["inspector_names"].tolist(),
        "drawn_at": [drawn_at] * len(t)}))
    for s in result.strata:
        print(f"  {s['stratum']:<4} {s['drawn']:>4} / {s['institutions']:<4} (rate {s['rate']:.0%})")
    for c in result.coverage:
        print(f"  {c['label']}: {c['drawn']}/{c['institutions']} = {c['rate']:.1%} (target ≥ {c['min_rate']:.0%})")
    print(f"抽取 drew {len(t)} targets, seed {args.seed} → {out / stem}.csv|.html|.json")
    if risk is not None:
        print(f"重点检查 risk list: top {len(risk)} of gold/institution_risk {args.period} → {out / stem}_risk.csv")
    return 0
