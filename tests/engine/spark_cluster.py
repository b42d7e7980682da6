"""A Spark standalone cluster on 127.0.0.1 for the tests: one master and N workers.

Started from the pyspark installation's own launcher (``$SPARK_HOME/bin/spark-class``; pyspark
4.x ships no ``sbin/start-master.sh``), each daemon in its own process group so that stopping
it also ends the executors it started. Used by the ``spark_cluster`` fixture of
``tests/conftest.py``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

MASTER = "org.apache.spark.deploy.master.Master"
WORKER = "org.apache.spark.deploy.worker.Worker"


def spark_home() -> Path:
    """The pyspark package folder: a Spark distribution with ``bin/`` and ``jars/``."""
    import pyspark

    return Path(pyspark.__file__).parent


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies, even by SIGKILL (Linux),
    so an interrupted run leaves no JVM behind (a worker's SIGTERM also ends its executors)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class SparkCluster:
    """A running standalone cluster; ``url`` is its ``spark://`` master URL."""

    folder: Path
    workers: int = 2
    cores: int = 1
    memory: str = "1g"
    master_port: int = field(default_factory=free_port)
    webui_port: int = field(default_factory=free_port)
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.master_port}"

    def state(self) -> dict:
        """The master's JSON status page (workers, running and completed applications)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.webui_port}/json/", timeout=5) as r:
            return json.load(r)

    def _spawn(self, name: str, *args: str) -> None:
        env = {
            **os.environ,
            "SPARK_HOME": str(spark_home()),
            "SPARK_CONF_DIR": str(self.folder / "conf"),  # no site configuration
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_DAEMON_MEMORY": "256m",
            "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
        }
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 - kept by the process
        self.procs.append(subprocess.Popen(
            [str(spark_home() / "bin" / "spark-class"), *args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True, preexec_fn=_die_with_parent,
        ))
        log.close()

    def start(self, timeout: float = 240.0) -> SparkCluster:
        """Start the master and the workers; return once every worker is ALIVE."""
        (self.folder / "conf").mkdir(parents=True, exist_ok=True)
        self._spawn("master", MASTER, "--host", "127.0.0.1", "--port", str(self.master_port),
                    "--webui-port", str(self.webui_port))
        for i in range(self.workers):  # ok-loop: one daemon per worker
            work = self.folder / f"worker{i}"
            work.mkdir(exist_ok=True)
            self._spawn(f"worker{i}", WORKER, "--host", "127.0.0.1", "--webui-port", "0",
                        "--cores", str(self.cores), "--memory", self.memory,
                        "--work-dir", str(work), self.url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [p.args[1] for p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"Spark daemon exited early: {dead}\n{self.logs()}")
            try:
                alive = [w for w in self.state()["workers"] if w["state"] == "ALIVE"]
            except OSError:
                alive = []
            if len(alive) >= self.workers:
                return self
            time.sleep(0.5)
        raise RuntimeError(f"Spark cluster not up after {timeout:.0f}s\n{self.logs()}")

    def logs(self, tail: int = 20) -> str:
        """The last lines of every daemon's log (for failure messages)."""
        out = []
        for f in sorted(self.folder.glob("*.log")):  # ok-loop: a few log files
            lines = f.read_text(errors="replace").splitlines()[-tail:]
            out.append(f"--- {f.name}\n" + "\n".join(lines))
        return "\n".join(out)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the workers (and their executors), then the master; kill what lingers."""
        for p in reversed(self.procs):  # ok-loop: workers first, master last
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for p in self.procs:  # ok-loop: one wait per daemon
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:  # the whole group: the daemon and any executor it left behind
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(5)
        self.procs.clear()
