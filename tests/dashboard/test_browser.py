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
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from segcore.sample.examples import seed_examples

ROOT = Path(__file__).resolve().parents[2]
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
    "retention": ("retention", "Users of a cell"),
    "user": ("user", "For example"),
    "data": ("data", "User attributes"),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(home: Path, cwd: Path, env_extra: dict[str, str], args: list[str]):
    """``streamlit run <repo>/dashboard/app.py`` from ``cwd``; returns (process, url, port)."""
    port = _free_port()
    env = {**os.environ, "SEGCORE_HOME": str(home), **env_extra}
    env.pop("STREAMLIT_SERVER_ADDRESS", None)
    if "SEGCORE_PASSWORD" not in env_extra:
        env.pop("SEGCORE_PASSWORD", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "dashboard" / "app.py"),
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            *args,
        ],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
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
    return proc, url, port


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def server(sample_home, tmp_path_factory):
    home = tmp_path_factory.mktemp("browser") / "store"
    shutil.copytree(sample_home, home)
    from segcore import Store

    seed_examples(Store(home))
    proc, url, _ = _start(home, ROOT, {}, [])
    yield url, Store(home)
    _stop(proc)


def _settle(page, marker: str) -> None:
    page.wait_for_selector('[data-testid="stApp"]', timeout=30_000)
    page.get_by_text(marker, exact=False).first.wait_for(timeout=60_000)
    # idle: no running indicator nor placeholder for 3 s in a row (a loaded machine pauses
    # between a page's reruns)
    busy = '[data-testid="stStatusWidget"], [data-testid="stSkeleton"], [data-testid="stSpinner"]'
    deadline, idle_since = time.monotonic() + 90, time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - idle_since < 3:
        if page.locator(busy).count():
            idle_since = time.monotonic()
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
                f"{size:,}", timeout=30_000
            )
            assert page.locator('[data-testid="stException"]').count() == 0
            # the members download is generated on click
            page.get_by_role("tab", name="Members").click()
            with page.expect_download(timeout=30_000) as dl:
                page.get_by_role("button", name="CSV", exact=True).click()
            lines = Path(dl.value.path()).read_text().splitlines()
            assert lines[0].startswith("user_id,") and len(lines) == size + 1
        finally:
            browser.close()


# ------------------------------------------------------------------ exposure (issue 21, item 5)
PASSWORD = "correct horse 42"


def _listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on ``port`` (from /proc/net/tcp*)."""
    found: set[str] = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                raw = bytes.fromhex(address)
                # the kernel prints each 32-bit word in host (little-endian) order
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(
                    socket.inet_ntop(socket.AF_INET if width == 8 else socket.AF_INET6, words)
                )
    return found


@pytest.fixture(scope="module")
def guarded(sample_home, tmp_path_factory):
    """The dashboard with a password, started from a folder that has no .streamlit/."""
    home = tmp_path_factory.mktemp("guarded") / "store"
    shutil.copytree(sample_home, home)
    from segcore import Store

    seed_examples(Store(home))
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    proc, url, port = _start(home, elsewhere, {"SEGCORE_PASSWORD": PASSWORD}, [])
    yield url, port, Store(home)
    _stop(proc)


def _sign_in(page, url: str, password: str) -> None:
    page.goto(f"{url}/")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    _settle(page, "Saved segments")


def test_started_from_another_folder_the_dashboard_listens_on_loopback_only(guarded):
    _, port, _ = guarded
    addresses = _listening_addresses(port)
    assert addresses == {"127.0.0.1"}


def test_member_downloads_are_not_served_without_the_session(guarded):
    url, _, store = guarded
    name = store.catalog.list()[0].name
    members = store.members(segment=name, as_of="2026-06-30", attributes=True)
    emails = [e for e in members["email"].to_list() if e]
    assert emails
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        media: list[str] = []
        page.on(
            "request", lambda r: media.append(r.url) if r.url.startswith(f"{url}/media/") else None
        )
        try:
            _sign_in(page, url, PASSWORD)
            page.get_by_role("link", name="Segment", exact=True).click()  # same session
            page.wait_for_url("**/segment", timeout=30_000)
            _settle(page, "Members now")
            page.get_by_role("tab", name="Members").click()
            for _ in range(2):  # the second click generates the file again
                with page.expect_download(timeout=30_000) as dl:
                    page.get_by_role("button", name="CSV", exact=True).click()
                text = Path(dl.value.path()).read_text()
                assert emails[0] in text and len(text.splitlines()) == members.height + 1
                page.wait_for_timeout(500)
            cookies = {c["name"]: c["value"] for c in page.context.cookies()}
        finally:
            browser.close()
    assert media
    signed_in = f"_streamlit_xsrf={cookies['_streamlit_xsrf']}"
    stranger = "_streamlit_xsrf=2|00000000|" + "ab" * 16 + "|1700000000"
    for link in set(media):
        # the signed-in browser's cookie still gets the file (the URL itself is right) ...
        request = urllib.request.Request(link, headers={"Cookie": signed_in})
        with urllib.request.urlopen(request, timeout=10) as r:
            assert emails[0] in r.read().decode()
        # ... a plain client (no cookie), or another browser's cookie, gets nothing
        for cookie in (None, stranger):
            headers = {"Cookie": cookie} if cookie else {}
            for method in ("GET", "HEAD"):
                request = urllib.request.Request(link, headers=headers, method=method)
                with pytest.raises(urllib.error.HTTPError) as err:
                    urllib.request.urlopen(request, timeout=10)
                assert err.value.code == 404
                body = err.value.read().decode(errors="replace")
                assert not any(e in body for e in emails)


def test_wrong_passwords_are_throttled_in_the_browser(guarded):
    url, _, _ = guarded
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page()
        try:
            page.goto(f"{url}/")
            box = page.get_by_label("Password", exact=True)
            for attempt in range(4):
                box.fill("wrong" if attempt < 3 else PASSWORD)
                page.get_by_role("button", name="Sign in").click()
                expected = "Wrong password." if attempt < 3 else "Too many wrong passwords"
                page.get_by_text(expected).first.wait_for(timeout=30_000)
                page.wait_for_timeout(300)
            # even the right password waits: nothing but the form is shown
            assert page.get_by_text("Members now").count() == 0
            assert page.get_by_text("Saved segments").count() == 0
        finally:
            browser.close()
