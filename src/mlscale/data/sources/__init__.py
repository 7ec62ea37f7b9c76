"""Where rows come from: files (CSV, JSON Lines, Parquet), SQL databases, DuckDB, HTTP APIs.

Each source is one module with one class; ``open_source`` picks the file reader by suffix.
"""

from mlscale.data.sources.files import Chunk, Source, open_source

__all__ = ["Chunk", "Source", "open_source"]
