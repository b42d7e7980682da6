"""Engines: the backend-neutral plan, the Polars backend and the SQL backend."""
