"""The dashboard in a real browser: headless Chromium via Playwright.

Starts ``streamlit run dashboard/app.py`` on a free port with a small sample store,
visits every page, asserts there is no exception box and saves screenshots to
``tests/_artifacts/``. With ``SEGCORE_SCREENSHOTS=1`` it also writes the README's
``docs/screenshots/<page>.png`` (1400 px wide).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from segcore.examples import seed_examples

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "_artifacts"
SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# url path -> (file name, text that shows the page finished rendering)
PAGES = {
    "": ("overview", "Saved segments"),
    "segments": ("segments", "Actions"),
    "builder": ("builder", "Matching users"),
    "segment": ("segment", "Members now"),
    "funnels": ("funnels", "Overall conversion"),
    "events": ("events", "Periods"),
    "user": ("user", "For example"),
    "data": ("data", "User attributes"),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(sample_home, tmp_path_factory):
    home = tmp_path_factory.mktemp("browser") / "store"
    shutil.copytree(sample_home, home)
    from segcore import Store

    seed_examples(Store(home))
    port = _free_port()
    env = {**os.environ, "SEGCORE_HOME": str(home)}
    env.pop("SEGCORE_PASSWORD", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "dashboard/app.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"streamlit did not start:\n{out}")
        time.sleep(0.3)
    yield url, Store(home)
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _settle(page, marker: str) -> None:
    page.wait_for_selector('[data-testid="stApp"]', timeout=30_000)
    page.get_by_text(marker, exact=False).first.wait_for(timeout=60_000)
    deadline = time.monotonic() + 60
    while page.locator('[data-testid="stStatusWidget"]').count() and time.monotonic() < deadline:
        time.sleep(0.2)
    frames = page.locator('[data-testid="stDataFrame"]')
    for i in range(frames.count()):
        if frames.nth(i).is_visible():
            frames.nth(i).locator("canvas").first.wait_for(state="attached", timeout=30_000)
    page.wait_for_timeout(1500)  # let tables and charts finish drawing


def test_every_page_in_chromium(server):
    url, store = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    write_docs = os.environ.get("SEGCORE_SCREENSHOTS") == "1"
    if write_docs:
        SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            for path, (name, marker) in PAGES.items():
                target = f"{url}/{path}"
                if name == "builder":
                    target += "?rule=" + urllib.request.quote(
                        "did('charged', within => '30 days') AND country IN ('US', 'DE')"
                    )
                page.goto(target)
                _settle(page, marker)
                if name == "builder":
                    rule = "event_count('charged', within => '90 days') >= 2"
                    box = page.get_by_role("textbox", name="Rule")
                    box.fill(rule)
                    box.press("Control+Enter")
                    page.get_by_text(rule[:20]).first.wait_for(timeout=30_000)
                    metric = page.locator('[data-testid="stMetric"]').filter(
                        has_text="Matching users"
                    )
                    expected = f"{store.count(rule, as_of='2026-06-30'):,}"
                    deadline = time.monotonic() + 30
                    value = ""
                    while time.monotonic() < deadline:
                        value = metric.locator('[data-testid="stMetricValue"]').inner_text()
                        if value == expected:
                            break
                        time.sleep(0.2)
                    assert value == expected
                    # the visual builder followed the text: an event row counting times
                    page.screenshot(path=str(ARTIFACTS / "builder-typed.png"), full_page=True)
                    assert page.get_by_text("Times", exact=True).count() == 1
                if name == "user":
                    uid = store.scan_users().select("user_id").head(1).collect().item()
                    box = page.get_by_label("User id")
                    box.fill(uid)
                    box.press("Enter")
                    _settle(page, "Recent events")
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
                assert page.locator('[data-testid="stException"]').count() == 0, name
                errors = page.locator('[data-testid="stAlertContentError"]').all_inner_texts()
                assert errors == [], (name, errors)
                if write_docs:
                    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False, type="png")
                if name == "segment":
                    for tab in ("Reachability", "Profile", "Overlap", "Members", "Rule & SQL"):
                        page.get_by_role("tab", name=tab).click()
                        page.wait_for_timeout(1200)
                        assert page.locator('[data-testid="stException"]').count() == 0, tab
                        slug = tab.split()[0].lower()
                        page.screenshot(path=str(ARTIFACTS / f"segment-{slug}.png"), full_page=True)
                        if write_docs and slug in ("reachability", "profile"):
                            page.screenshot(path=str(SHOTS / f"segment-{slug}.png"))
        finally:
            browser.close()


def test_navigation_between_pages_in_chromium(server):
    url, store = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{url}/segments")
            _settle(page, "Actions")
            page.get_by_role("button", name="New segment").click()
            page.wait_for_url("**/builder", timeout=30_000)
            _settle(page, "Add a condition")
            page.goto(f"{url}/segments")
            _settle(page, "Actions")
            view = page.locator('[data-testid="stButton"]').filter(
                has=page.locator('[data-testid="stIconMaterial"]', has_text="visibility")
            )
            view.nth(1).click()  # the second segment by name
            page.wait_for_url("**/segment", timeout=30_000)
            _settle(page, "Members now")
            page.screenshot(path=str(ARTIFACTS / "navigation.png"), full_page=False)
            second = store.catalog.list()[1]
            assert page.get_by_text(second.description).count() >= 1
            second = second.name
            size = store.count(segment=second, as_of="2026-06-30")
            metric = page.locator('[data-testid="stMetric"]').filter(has_text="Members now")
            # the value may still be recomputing when the label appears: wait for it (30 s)
            expect(metric.locator('[data-testid="stMetricValue"]')).to_have_text(
                f"{size:,}", timeout=30_000)
            assert page.locator('[data-testid="stException"]').count() == 0
            # the members download is generated on click
            page.get_by_role("tab", name="Members").click()
            with page.expect_download(timeout=30_000) as dl:
                page.get_by_role("button", name="CSV", exact=True).click()
            lines = Path(dl.value.path()).read_text().splitlines()
            assert lines[0].startswith("user_id,") and len(lines) == size + 1
        finally:
            browser.close()
