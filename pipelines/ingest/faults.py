"""Fault injection for crash tests: `FUNDGUARD_FAULT=<point>` makes the process die (`os._exit(137)`, as a
kill -9 would leave it: no cleanup, no finally) when a load reaches that point. `tests/test_faults.py`
kills `fundguard run` at each point and proves the next run recovers and publishes the clean list."""
from __future__ import annotations

import os

ENV = "FUNDGUARD_FAULT"

#: the named points, in the order a load passes them
POINTS = (
    "ingest.listed",             # drop listed, recovery of an earlier crash done, nothing written
    "ingest.journal_opened",     # the load's journal written (before versions of every table it may write)
    "ingest.bronze_file",        # the first file committed to bronze
    "ingest.staged",             # every file in bronze and staging
    "ingest.silver_entity",      # the first entity written to silver
    "ingest.silver_done",        # every silver table written, fee_list netted
    "ingest.quarantine_written",  # quarantine appended
    "ingest.reconciled",         # reconciliation and the independent count passed
    "ingest.validated",          # the silver suite passed
    "ingest.ledger_written",     # the commit point: the ledger holds the load's files
    "ingest.report_written",     # the load report written, the journal not yet closed
    "load.drop_done",            # the drop loaded, the knowledge base not yet
)


def point(name: str) -> None:
    """Die here when FUNDGUARD_FAULT names this point."""
    if name not in POINTS:
        raise ValueError(f"unknown fault point {name!r}")
    if os.environ.get(ENV) == name:
        os._exit(137)
