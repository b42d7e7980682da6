"""Engine-test fixtures: a real Spark standalone cluster on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine.spark_cluster import SparkCluster


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory) -> Iterator[SparkCluster]:
    """A master and two workers (1 core, 1 GiB each). A process runs one Spark master, so
    the process's earlier Spark session (``local[2]`` of other tests) is stopped first, and
    the session on the cluster is stopped with it at the end."""
    from segcore.engine.sql.engines import stop_spark

    cluster = SparkCluster(tmp_path_factory.mktemp("spark_cluster"))
    try:
        stop_spark()
        yield cluster.start()
    finally:
        stop_spark()
        cluster.stop()
