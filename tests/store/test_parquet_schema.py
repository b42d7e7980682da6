"""Parquet footers read once per file version, and the union of several files' columns."""

from __future__ import annotations

import polars as pl
import pytest

from segcore.errors import StoreError
from segcore.store import parquet_schema
from segcore.store.parquet_schema import file_schema, union_schema


def test_a_footer_is_read_again_only_when_the_file_changes(tmp_path, monkeypatch):
    f = tmp_path / "a.parquet"
    pl.DataFrame({"x": [1]}).write_parquet(f)
    reads = []
    real = pl.scan_parquet
    monkeypatch.setattr(parquet_schema.pl, "scan_parquet",
                        lambda *a, **k: reads.append(a[0]) or real(*a, **k))
    assert dict(file_schema(f)) == {"x": pl.Int64}
    assert dict(file_schema(f)) == {"x": pl.Int64}
    assert len(reads) == 1
    pl.DataFrame({"x": [1], "name": ["a longer file"]}).write_parquet(f)
    assert dict(file_schema(f)) == {"x": pl.Int64, "name": pl.String}
    assert len(reads) == 2


def test_union_takes_new_columns_and_the_first_type_that_is_not_null(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pl.DataFrame({"x": [1], "plan": [None]}).write_parquet(a)
    pl.DataFrame({"plan": ["pro"], "x": [2], "extra": [1.5]}).write_parquet(b)
    assert union_schema([a, b]) == {"x": pl.Int64, "plan": pl.String, "extra": pl.Float64}


def test_a_file_that_is_not_parquet_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(StoreError, match="cannot read .*bad.parquet"):
        file_schema(bad)
