"""The README's set-up commands are the ones CI and users run."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    blocks = [b.strip() for b in _bash_blocks(setup)]
    assert len(blocks) == 2, "the set-up is two commands: run the dashboard, run the tests"
    assert "streamlit run dashboard/app.py" in blocks[0]
    test_command = blocks[1]
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1].strip() == test_command


def test_ci_installs_the_dev_extra_and_chromium():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -q -e '.[dev]'" in ci
    assert "apt-get install -y -qq chromium" in ci


def _extras() -> tuple[list[str], dict[str, list[str]]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return data["dependencies"], data["optional-dependencies"]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}


def _top_level_imports(paths: list[Path]) -> set[str]:
    """Third-party modules imported at module level (lazy imports inside functions aside)."""
    found = set()
    for path in paths:
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    local = {"segcore", "dashboard", "app_pages", "__future__"}
    return {m for m in found - local if m not in sys.stdlib_module_names}


def test_the_run_command_installs_what_the_dashboard_needs_and_not_the_test_extras():
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    run, test = (b.strip() for b in _bash_blocks(setup))
    assert run.startswith("pip install -e '.[dashboard]' && ")
    assert test.startswith("pip install -e '.[dev]' && ")
    base, extras = _extras()
    installed = _names(base) | _names(extras["dashboard"])
    assert not _names(extras["engines"]) & installed  # DuckDB, chDB, Spark: not for the UI
    assert not {"pytest", "playwright", "hypothesis"} & installed
    # the HTTP service's app is the `service` extra's (only `segcore serve` imports it)
    service = [ROOT / "segcore" / "service" / "app.py"]
    code = [*(ROOT / "segcore").rglob("*.py"), *(ROOT / "dashboard").rglob("*.py")]
    assert _top_level_imports([p for p in code if p not in service]) <= installed
    web = _names(extras["service"]) | {"pydantic", "starlette"}  # FastAPI brings these two
    assert _top_level_imports(service) <= installed | web
    # the tests' extra holds everything the run command installs
    assert (_names(extras["dashboard"]) | _names(extras["engines"])
            | _names(extras["service"])) <= _names(extras["dev"])
