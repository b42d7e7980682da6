"""The dashboard as an analyst uses it (issue 19), in headless Chromium: what only a
browser shows (Enter in a form, clicks on table rows, downloads, an upload refused)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from segcore.sample.examples import seed_examples
from tests.dashboard.test_browser import ARGS, CHROMIUM, _settle, _start, _stop

AS_OF = "2026-06-30"


@pytest.fixture(scope="module")
def server(sample_home, tmp_path_factory):
    home = tmp_path_factory.mktemp("browser_analyst") / "store"
    shutil.copytree(sample_home, home)
    from segcore import Store

    seed_examples(Store(home))
    proc, url, _ = _start(home, Path(__file__).resolve().parents[2], {}, [])
    yield url, Store(home)
    _stop(proc)


@pytest.fixture
def page(server):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def test_enter_in_the_name_field_does_not_save(server, page):
    url, store = server
    page.goto(f"{url}/builder")
    _settle(page, "Add a condition")
    rule = page.locator("textarea[aria-label=\"Rule\"]")
    rule.fill("country = 'US'")
    rule.press("Tab")
    page.get_by_text("Matching users").first.wait_for(timeout=30_000)
    name = page.locator("input[aria-label=\"Name\"]").first
    name.fill("Typed then Enter")
    name.press("Enter")
    page.wait_for_timeout(2500)
    assert not store.catalog.exists("Typed then Enter")
    page.locator("input[aria-label=\"Description\"]").first.fill("US users")
    page.get_by_role("button", name="Save segment").click()
    page.get_by_text("Saved segment 'Typed then Enter'.").wait_for(timeout=30_000)
    assert store.catalog.get("Typed then Enter").description == "US users"


def test_a_click_on_an_overview_row_opens_the_segment(server, page):
    url, store = server
    page.goto(url)
    _settle(page, "Saved segments")
    grid = page.locator('[data-testid="stDataFrame"]').last
    box = grid.bounding_box()
    first = store.catalog.list()[0].name  # rows in the catalog's order
    page.mouse.click(box["x"] + 15, box["y"] + 35 + 17)  # the first row's selection box
    page.wait_for_url("**/segment", timeout=30_000)
    _settle(page, "Members now")
    expect(page.get_by_role("combobox", name="Segment")).to_have_value(first)


def test_compare_page_downloads_its_points(server, page):
    url, store = server
    page.goto(f"{url}/compare")
    _settle(page, "Download the points")
    with page.expect_download(timeout=30_000) as dl:
        page.get_by_role("button", name="Download the points (CSV)").click()
    lines = Path(dl.value.path()).read_text().splitlines()
    assert lines[0] == "segment,date,members,entered,exited,all_users,share"
    assert len(lines) == 1 + 3 * 30  # three segments, thirty days
    assert page.locator('[data-testid="stException"]').count() == 0


def test_a_refused_import_finishes_its_progress_bar(server, page, tmp_path):
    url, store = server
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,event,ts\nu1,x,2026-01-01T00:00:00Z\nu2,y,not a time\n")
    page.goto(f"{url}/data")
    _settle(page, "User attributes")
    page.get_by_role("tab", name="Import", exact=True).click()
    label = page.locator('[data-testid="stCheckbox"]').filter(has_text="Skip invalid rows")
    expect(label).to_be_visible(timeout=30_000)
    # the label fits its column: one line, not cut off
    assert label.inner_text().strip() == "Skip invalid rows"
    page.locator('input[type="file"]').first.set_input_files(str(bad))
    page.get_by_text("bad.csv").first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_text("Refused: nothing was imported").wait_for(timeout=30_000)
    expect(page.get_by_text("bad.csv: line 3")).to_be_visible()
    assert "/tmp" not in page.locator('[data-testid="stAlert"]').first.inner_text()
