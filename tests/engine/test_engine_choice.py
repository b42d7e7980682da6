"""The Engine value: parsing user text, validation, round trips."""

from __future__ import annotations

import pytest

from segcore.engine.choice import POLARS, Engine
from segcore.errors import UsageError


@pytest.mark.parametrize(
    ("text", "name", "master"),
    [
        (None, "polars", None),
        ("", "polars", None),
        ("Polars", "polars", None),
        ("duckdb", "duckdb", None),
        ("chdb", "clickhouse", None),
        ("clickhouse", "clickhouse", None),
        ("spark", "spark", None),
        ("spark://10.0.0.5:7077", "spark", "spark://10.0.0.5:7077"),
        ("local[*]", "spark", "local[*]"),
        ("sc://localhost:15002", "spark", "sc://localhost:15002"),
        ("spark@local[2]", "spark", "local[2]"),
    ],
)
def test_parse(text, name, master):
    e = Engine.parse(text)
    assert (e.name, e.master) == (name, master)
    assert Engine.parse(str(e)) == e
    assert Engine.from_dict(e.to_dict()) == e


def test_parse_with_master_and_identity():
    assert Engine.parse("spark", master="local[3]") == Engine("spark", "local[3]")
    e = Engine("duckdb")
    assert Engine.parse(e) is e
    assert POLARS.is_polars and POLARS.dialect is None
    assert Engine("clickhouse").dialect == "clickhouse"
    assert len({Engine("spark"), Engine("spark"), Engine("duckdb")}) == 2


def test_bad_engines_are_one_line_usage_errors():
    with pytest.raises(UsageError, match="unknown engine 'oracle'"):
        Engine.parse("oracle")
    with pytest.raises(UsageError, match="master URL is for the spark engine"):
        Engine("duckdb", "local[2]")
