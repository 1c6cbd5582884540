"""Planning a screening run in bounded memory (pure: sizes in, batches out; no I/O, no clock).

`rules/families.yml` says what a family must see together: an institution-partitioned family runs on
batches of whole institutions (every period of each: split admissions and stock balances cross years), a
person-partitioned family on buckets of persons (a stable hash of `psn_no`, the same in every engine and
in Python). Batch sizes follow from a memory budget (`--memory 4GB`, conf `screen.memory`): each table's
rows, known from the Delta log per partition, are costed at the bytes a row takes once the engine has
materialised it (measured, `ROW_BYTES`); the tables every batch shares (persons, diagnoses, institutions,
knowledge base) are a fixed cost. A budget too small for one institution fails before anything is read,
naming the institution, its partitions and the budget it would need.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from pipelines.contract import UsageError

#: bytes one row of an input takes in the engine once read with the columns the rules name and materialised
#: with the shared views built on it (fee lines: `fee`, `visit_fund`, `fee_dup_groups` and the rules' own
#: joins and windows). Measured on the sample district (benchmarks/scale.py prints the fit): peak RSS of a
#: batch minus the process at rest, over the batch's rows.
ROW_BYTES = {
    "silver/fee_list_net": 640, "silver/mdtrt": 700, "silver/setl": 200, "silver/inv_movement": 150,
    "silver/psn": 120, "silver/diag": 90, "silver/fixmedins": 200,
    "silver/kb_hilist": 400, "silver/kb_item_pair": 100, "silver/kb_param": 100,
}
#: the process itself (interpreter, pyarrow, DuckDB, delta-rs) before any input is read
BASE_BYTES = 400 * 2**20
#: tables split by institution (their partition column) in an institution batch, and by person in a bucket
PARTITIONED = ("silver/fee_list_net", "silver/mdtrt", "silver/setl", "silver/inv_movement")
#: of those, the ones a person-partitioned family reads (a person's lines and visits)
PERSON_TABLES = ("silver/fee_list_net", "silver/mdtrt")
#: the tables every batch reads whole (small: one row per person, diagnosis, institution, kb row)
SHARED = ("silver/psn", "silver/diag", "silver/fixmedins", "silver/kb_hilist", "silver/kb_item_pair",
          "silver/kb_param")

#: persons are hashed into this many buckets, whatever the budget (so a person's bucket is stable across runs,
#: which incremental screening relies on); a person job screens a set of buckets that fits the budget
BUCKETS = 64

class BudgetError(UsageError):
    """The memory budget cannot hold one partition (or the shared tables): a usage error (exit 2)."""


def human(nbytes: float) -> str:
    for unit, f in (("GB", 2**30), ("MB", 2**20)):
        if nbytes >= f or unit == "MB":
            return f"{nbytes / f:.1f}{unit}"
    return f"{nbytes}B"


def bucket_of(psn_no: str | None, buckets: int) -> int:
    """The person bucket of `psn_no`: the first 32 bits of md5(psn_no, null as '') modulo `buckets` — what
    the engines' `bucket_expr` compute in SQL."""
    return int(hashlib.md5((psn_no or "").encode("utf-8")).hexdigest()[:8], 16) % buckets


@dataclass
class Sizes:
    """Rows of each input: per institution for the partitioned tables, in total for every table."""
    by_institution: dict[str | None, dict[str, int]] = field(default_factory=dict)   # inst -> table -> rows
    partitions: dict[str | None, list[str]] = field(default_factory=dict)            # inst -> partition names
    totals: dict[str, int] = field(default_factory=dict)                             # table -> rows

    def add(self, table: str, institution: str | None, partition: str, rows: int) -> None:
        per = self.by_institution.setdefault(institution, {})
        per[table] = per.get(table, 0) + rows
        names = self.partitions.setdefault(institution, [])
        if partition not in names:
            names.append(partition)
        self.totals[table] = self.totals.get(table, 0) + rows


def cost(rows: dict[str, int], tables=None) -> int:
    return sum(ROW_BYTES.get(t, 200) * n for t, n in rows.items() if tables is None or t in tables)


@dataclass
class Plan:
    budget: int | None
    shared_bytes: int
    institution_batches: list[list[str | None]]
    person_jobs: list[list[int]]         # each: the person buckets (of BUCKETS) screened together
    whole_bytes: int                     # what the whole lake at once would need

    @property
    def partitioned(self) -> bool:
        return self.budget is not None and self.whole_bytes > self.budget

    @property
    def batches(self) -> int:
        return len(self.institution_batches) + len(self.person_jobs)


def plan(sizes: Sizes, budget: int | None, *, institution_families: bool = True,
         person_families: bool = True) -> Plan:
    """Batches of institutions and the number of person buckets that fit `budget` (bytes).

    Institutions are packed in code order, first fit, so a plan is the same for the same lake and budget."""
    shared = BASE_BYTES + cost(sizes.totals, SHARED)
    whole = shared + cost(sizes.totals, PARTITIONED)
    if budget is None or whole <= budget:
        insts = sorted(sizes.by_institution, key=lambda k: (k is None, k or ""))
        return Plan(budget, shared, [insts] if institution_families and insts else [],
                    [list(range(BUCKETS))] if person_families else [], whole)
    room = budget - shared
    if room <= 0:
        raise BudgetError(f"memory budget {human(budget)} cannot hold the tables every batch shares "
                          f"(persons, diagnoses, institutions, knowledge base: {human(shared)} with the process); "
                          f"use --memory {human(shared * 1.5)} or more")
    batches: list[list[str | None]] = []
    if institution_families:
        batches = _pack(sizes, room, budget, shared)
    jobs: list[list[int]] = []
    if person_families:
        jobs = person_jobs(range(BUCKETS), cost(sizes.totals, PERSON_TABLES), room)
    return Plan(budget, shared, batches, jobs, whole)


def person_jobs(buckets, person_bytes: int, room: int | None) -> list[list[int]]:
    """`buckets` (of BUCKETS, each holding about 1/BUCKETS of the persons' rows) grouped into jobs that fit
    `room` bytes (None: no bound, one job)."""
    buckets = sorted(buckets)
    if room is None:
        return [buckets] if buckets else []
    per_job = max(1, int(room // max(person_bytes / BUCKETS, 1)))
    return [buckets[i:i + per_job] for i in range(0, len(buckets), per_job)]


def _pack(sizes: Sizes, room: int, budget: int, shared: int) -> list[list[str | None]]:
    batches: list[list[str | None]] = []
    current: list[str | None] = []
    used = 0
    for inst in sorted(sizes.by_institution, key=lambda k: (k is None, k or "")):
        need = cost(sizes.by_institution[inst], PARTITIONED)
        if need > room:
            parts = ", ".join(sizes.partitions.get(inst, [])[:6])
            fee = sizes.by_institution[inst].get("silver/fee_list_net", 0)
            raise BudgetError(
                f"memory budget {human(budget)} is too small for institution {inst} ({fee:,} fee lines; partitions "
                f"{parts}): one institution is screened at once and needs about {human(need + shared)}; "
                f"use --memory {human((need + shared) * 1.1)} or more")
        if current and used + need > room:
            batches.append(current)
            current, used = [], 0
        current.append(inst)
        used += need
    if current:
        batches.append(current)
    return batches
