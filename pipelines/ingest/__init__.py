"""Ingestion: a landing drop (contract §1) into bronze/silver Delta tables, losing nothing.

`ingest_drop(landing, lake, salt=..., batch_rows=...)` is the entry point; `pipeline.py` wires the steps:

    inspection  entity, format, encoding, headers of each file      cells    landing values as text
    readers     files streamed as string batches                    nodes    pure SQL: typing, dedup, netting
    fastpath    plain UTF-8 CSV → bronze in one pass                bronze   other files → bronze in batches
    typist      the typing thread (batches → staging)               staging  typed rows, lazy parts, chunks
    dedup       in-drop duplicates and conflicts                    silver   silver writes (fresh, upsert, kb)
    netting     refunds netted → silver/fee_list_net                reconcile rows read = loaded + quarantined
    ledger      _meta ledger, load report, rollback                 report   the reconciliation report
    context     LoadContext, Quarantine, the staging DuckDB         messy    a drop's "messy twin" (tests)
"""
from pipelines.ingest.pipeline import (FileReport, IngestError, LoadReport, RefusedFile, ingest_drop,
                                       load_knowledge_base)

__all__ = ["ingest_drop", "load_knowledge_base", "LoadReport", "FileReport", "IngestError", "RefusedFile"]
