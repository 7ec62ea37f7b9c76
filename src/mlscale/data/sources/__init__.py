"""Where rows come from: files (CSV, JSON Lines, Parquet) read by DuckDB, and sources that
produce Arrow batches in Python (SQL databases, DuckDB queries, HTTP APIs).
"""

from mlscale.data.sources.base import BaseArrowSource
from mlscale.data.sources.duck import FileSource, open_file

__all__ = ["BaseArrowSource", "FileSource", "open_file"]
