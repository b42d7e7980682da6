"""Engine-test fixtures: a real Spark standalone cluster on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine.spark_cluster import SparkCluster


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory) -> Iterator[SparkCluster]:
    """A master and two workers (1 core, 1 GiB each), stopped at the end of the module
    together with the test process's SparkSession on it."""
    from segcore.engine.sql.engines import stop_spark_session

    cluster = SparkCluster(tmp_path_factory.mktemp("spark_cluster"))
    try:
        yield cluster.start()
    finally:
        stop_spark_session()
        cluster.stop()
