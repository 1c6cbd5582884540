"""Ingestion: a landing drop (contract §1) into bronze/silver Delta tables, losing nothing.

`ingest_drop(landing, lake, salt=..., batch_rows=...)` is the entry point; see pipeline.py.
"""
from pipelines.ingest.pipeline import (FileReport, IngestError, LoadReport, RefusedFile, ingest_drop,
                                       load_knowledge_base)

__all__ = ["ingest_drop", "load_knowledge_base", "LoadReport", "FileReport", "IngestError", "RefusedFile"]
