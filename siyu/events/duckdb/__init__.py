from siyu.events.duckdb.store import DuckDBEventStore

__all__ = ["DuckDBEventStore"]
