"""The in-process Polars backend: rule trees to Polars expressions over the store."""
