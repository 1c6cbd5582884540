"""The claim checker behind the HTTP layer: the warm lake, its sessions, refreshes and the answer's shape."""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa

from pipelines.contract.pii import pii_hash
from pipelines.catalog import CATEGORY_EN, Catalog
from pipelines.contract import SEVERITY_LABELS
from pipelines.serve import claim_time
from pipelines.serve.claim import Claim, ClaimError
from pipelines.serve.dispatch import Dispatcher, Overloaded, session_class
from pipelines.serve.evaluate import RuleProgram
from pipelines.serve.history import SOURCES, WarmHolder, WarmLake, lake_versions, load_warm_lake
from pipelines.storage import Lake


@dataclass(frozen=True)
class Settings:
    token: str | None = None              # bearer token; None only with insecure_local
    insecure_local: bool = False
    max_body_bytes: int = 2_000_000
    max_batch: int = 50
    max_lines: int = 5_000
    workers: int = 1                      # sessions checking claims at once
    max_pass: int = 128                   # claims (of different persons) checked together in one pass
    threads: int = 1                      # DuckDB threads
    memory_limit: str | None = None
    refresh_seconds: float = 30.0         # how often the lake's versions are compared (0: never)
    max_wait_seconds: float = 2.0         # a claim waiting longer for a pass is answered Overloaded (0: no limit)
    check_timeout_seconds: float = 30.0   # a claim in a pass longer than this is answered Overloaded
    salt: str = ""                        # the silver PII salt: what log lines carry instead of psn_no
    background_load: bool = True          # load the lake after start-up (readyz says when ready)
    engine: str = "sqlite"                # what runs a pass: "sqlite" (pipelines.serve.lite) or "duckdb"


class NotReady(RuntimeError):
    """The lake is not loaded yet (answered 503)."""


class ClaimService:
    def __init__(self, lake: Lake, catalog: Catalog, program: RuleProgram, settings: Settings):
        self.lake, self.catalog, self.program, self.settings = lake, catalog, program, settings
        self.holder = WarmHolder(lake, self._load)
        self.rules = {r.id: r for r in catalog.rules}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.load_error: str | None = None
        self.dispatcher: Dispatcher | None = None

    # ---- lifecycle
    def _load(self, lake: Lake) -> WarmLake:
        wanted = {s: set(self.program.columns.get(s, set())) for s in SOURCES}
        warm = load_warm_lake(lake, wanted, threads=self.settings.threads, memory_limit=self.settings.memory_limit)
        make = session_class(self.settings.engine)
        for _ in range(self.settings.workers):     # made before the lake is ready: a SQLite session copies the
            session = make(warm, self.program)     # knowledge base and stock, seconds the first claims would wait
            warm.sessions.append(session)
            warm.spare.append(session)
        return warm

    def start(self) -> None:
        self.dispatcher = Dispatcher(self.holder, self.program, self.settings.workers, self.settings.max_pass,
                                     max_wait=self.settings.max_wait_seconds, engine=self.settings.engine)
        if self.settings.background_load:
            self._spawn(self._initial_load)
        else:
            self._initial_load()
        if self.settings.refresh_seconds > 0:
            self._spawn(self._watch)

    def _spawn(self, target) -> None:
        t = threading.Thread(target=target, daemon=True, name=f"serve-{target.__name__}")
        t.start()
        self._threads.append(t)

    def _initial_load(self) -> None:
        try:
            self.holder.load()
        except Exception as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.refresh_seconds):
            if self.holder.current is not None:
                self.holder.refresh_if_changed()

    def stop(self) -> None:
        self._stop.set()
        if self.dispatcher is not None:
            self.dispatcher.stop()
        for t in self._threads:
            t.join(timeout=5)
        self.holder.close()

    @property
    def ready(self) -> bool:
        return self.holder.current is not None

    def status(self) -> dict:
        warm = self.holder.current
        return {
            "ready": warm is not None,
            "input_versions": warm.versions if warm else None,
            "rows": warm.rows if warm else None,
            "history_bytes": warm.history_bytes if warm else None,
            "lake_versions_now": lake_versions(self.lake) if warm else None,
            "kb_release": warm.kb_release if warm else None,
            "load_error": self.load_error,
            "refresh_error": self.holder.last_error,
        }

    # ---- checking
    async def check_many(self, claims: list[Claim], arrived: float | None = None,
                         stats: dict | None = None) -> list[dict | ClaimError]:
        """Each claim's answer, or the ClaimError that stopped it, in order (NotReady before the lake is loaded;
        Overloaded when one of them was not checked in time: the claims of the request not yet in a pass are
        then withdrawn). `arrived` (time.monotonic()) is when the request came in. Awaited on the event loop:
        no thread waits for a pass, so every claim in flight is in the dispatcher's queue and a pass takes as
        many as `max_pass` allows (a thread per waiting request capped the queue at the thread pool's size).
        `stats` (the access log's fields) gets `pass_claims`: the largest pass the request's claims were in."""
        if self.holder.current is None or self.dispatcher is None:
            raise NotReady("the lake is not loaded yet / 数据湖尚未加载完成")
        waiting = [asyncio.wrap_future(f) for f in self.dispatcher.submit(claims, since=arrived)]
        try:
            outcomes = await asyncio.wait_for(asyncio.gather(*waiting), self.settings.check_timeout_seconds)
        except TimeoutError:
            raise Overloaded(f"not checked within {self.settings.check_timeout_seconds:g} s / "
                             f"审核超时，请稍后重试") from None
        finally:
            for w in waiting:          # a claim not yet in a pass is withdrawn (cancelling it cancels its claim)
                w.cancel()
        if stats is not None:
            stats["pass_claims"] = max(o.pass_claims for o in outcomes)
        return [o.error if o.error is not None else self._answer(c, o.suspects, o.claim_time, o.warm)
                for c, o in zip(claims, outcomes)]

    def _answer(self, claim: Claim, suspects: pa.Table, t, warm: WarmLake) -> dict:
        undecidable = claim_time.undecidable_families()
        if "setl" not in claim.rows:      # decidable, but only with the claim's own settlement
            undecidable.append({"family": "self_pay_ratio", "reason": "no settlement (setl) sent with the claim",
                                "reason_zh": "未提交结算信息"})
        rows = sorted(suspects.to_pylist(), key=lambda r: (r["rule_id"], r["suspect_id"]))
        return {
            "violations": [self._violation(r) for r in rows],
            "undecidable_families": undecidable,
            "checked_families": sorted({r.family for r in self.program.rules}),
            "kb_release": warm.kb_release,
            "rule_set_fingerprint": self.program.fingerprint,
            "input_versions": {k: v for k, v in warm.versions.items() if v is not None},
            "claim_time": t.isoformat(sep=" "),
            "mdtrt_id": claim.mdtrt_id,
        }

    def _violation(self, r: dict) -> dict:
        rule = self.rules[r["rule_id"]]
        fam = self.catalog.families.get(r["family"])
        amount = r["amount"]
        return {
            "rule_id": r["rule_id"], "rule_version": r["rule_version"], "rule_name": rule.name,
            "family": r["family"], "family_label": fam.label if fam else r["family"],
            "category": r["category"], "category_en": CATEGORY_EN.get(r["category"], ""),
            "severity": r["severity"], "severity_label": SEVERITY_LABELS.get(r["severity"], r["severity"]),
            "suspect_id": r["suspect_id"], "mdtrt_id": r["mdtrt_id"], "setl_id": r["setl_id"],
            "feedetl_sn": r["feedetl_sn"], "hilist_code": r["hilist_code"],
            "event_time": r["event_time"].isoformat(sep=" ") if r["event_time"] else None,
            "period": r["period"],
            "amount": str(amount.quantize(Decimal("0.01"))) if amount is not None else None,
            "evidence": r["evidence"],
        }


def person_hash(salt: str, psn_no: str | None) -> str | None:
    """psn_no as log lines carry it: the keyed hash silver uses for personal data (contract.pii, first 16 hex)."""
    if not psn_no:
        return None
    return pii_hash(salt, psn_no)[:16]
