"""Provider-level analytics beyond fixed rules (issue #16): indicators per institution and period, peer
outliers, the key drugs and consumables watch, and the institution risk ranking.

Pure steps (`indicators`, `peers`, `item_watch`, `risk`) take a DuckDB connection whose views are the
inputs, or Arrow/pandas frames, and return frames; `io` reads the lake and writes the gold tables through
`pipelines.storage`. Nothing here reads a clock.
"""
