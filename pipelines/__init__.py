"""FundGuard: screening medical-insurance (医保) claims for fraud, waste and abuse."""

__version__ = "0.1.0"



def __getattr__(name: str):
    """`pipelines.open_table`: read a lake table's snapshot (pipelines/storage/readers.py), imported on use
    so that `import pipelines` stays light."""
    if name == "open_table":
        from pipelines.storage.readers import open_table
        return open_table
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
