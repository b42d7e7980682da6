"""Every command line of the README runs as written, in order, on a fresh home.

The README's bash blocks (the set-up's install commands aside) are run by ``bash -e`` in
a temporary folder holding a copy of ``examples/``, with ``segcore`` calling this
checkout's code through the running interpreter. Each command's output is captured
between markers, and a few outputs are checked.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[2]
MARK = "@@@ command "


def readme_commands() -> list[str]:
    """The README's shell commands outside the set-up, continuation lines joined."""
    text = (ROOT / "README.md").read_text()
    before, rest = text.split("## Set-up", 1)
    after = rest.split("\n## ", 1)[1]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", before + after, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():  # ok-loop: README lines
            if line.strip():
                commands.append(line.strip())
    return commands


def _script(commands: list[str]) -> str:
    shim = f"segcore() {{ {shlex.quote(sys.executable)} -m segcore \"$@\"; }}"
    lines = ["set -euo pipefail", shim]
    for i, command in enumerate(commands):  # ok-loop: README commands
        lines.append(f"printf '%s\\n' {shlex.quote(f'{MARK}{i}')}")
        lines.append(command)
    return "\n".join(lines) + "\n"


def test_the_readme_names_only_shipped_files():
    for command in readme_commands():  # ok-loop: README commands
        for word in shlex.split(command, comments=True):
            if word.startswith("examples/"):
                assert (ROOT / word).exists(), f"README uses {word}, which is not shipped"


def test_readme_segments_do_not_collide_with_the_demo_segments():
    from segcore.sample.examples import EXAMPLES

    demo = {e["name"] for e in EXAMPLES}
    created = [
        shlex.split(c)[3] for c in readme_commands() if c.startswith("segcore segment create")
    ]
    assert created and not demo & set(created)


@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path):
    commands = readme_commands()
    assert sum(c.startswith("segcore ") for c in commands) >= 15
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {k: v for k, v in os.environ.items() if k != "SEGCORE_HOME"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["SEGCORE_EVENT_CACHE"] = "0"
    proc = subprocess.run(
        ["bash", "-c", _script(commands)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )
    parts = proc.stdout.split(MARK)[1:]
    ran = {int(p.split("\n", 1)[0]): p.split("\n", 1)[1] for p in parts}
    assert proc.returncode == 0, (
        f"README command failed: {commands[max(ran)]!r}\n{proc.stderr[-2000:]}"
    )
    assert len(ran) == len(commands)

    def out(prefix: str) -> str:
        i = next(i for i, c in enumerate(commands) if c.startswith(prefix))
        return ran[i]

    home = tmp_path / "demo"  # the README's SEGCORE_HOME, relative to where it runs
    assert (home / "events").is_dir() and not (tmp_path / "data").exists()
    assert "wrote 2,000 users" in out("segcore sample")
    assert out("segcore ingest events examples/orders.csv").startswith(
        "imported 5 of 5 rows into events"
    )
    users = out("segcore ingest users examples/crm.ndjson")
    assert users.startswith("imported 3 of 5 rows into users (1 new users, 2 updated)")
    written = sorted((home / "rejects").glob("crm-*.rejected.ndjson"))
    assert len(written) == 1 and f"rejected rows written to demo/rejects/{written[0].name}" in users
    rejects = pl.read_ndjson(written[0])
    assert rejects["__line"].to_list() == [4, 5]
    assert "imported 3 of 3 rows into events" in out("segcore ingest export --format amplitude")
    evaluated = json.loads(out("segcore eval --rule \"did('charged'"))
    assert evaluated["count"] > 0
    members = pl.read_csv(tmp_path / "members.csv")
    assert members.height > 0 and "user_id" in members.columns
    assert "created static segment 'Webinar attendees'" in out(
        'segcore segment create "Webinar attendees"'
    )
    assert "4 members" in out('segcore segment create "Webinar attendees"')
    assert "saved 'Checkout drop-offs' (version 2)" in out("segcore segment edit")
    profile = out("segcore user u000042")
    assert "lead_score               91" in profile  # from examples/crm.ndjson
    assert "Webinar attendees" in profile and "536366" in profile  # an examples/orders.csv row
    funnel = json.loads(out("segcore funnel"))
    assert funnel  # a JSON report
    assert "SELECT" in out("segcore sql").upper()
