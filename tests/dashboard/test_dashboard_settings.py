"""The Settings page (AppTest): the service's tokens and last syncs, never a token value."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from segcore.service.memberships import Memberships
from segcore.service.state import State
from segcore.store.tokens import Tokens


def frame(at: AppTest, column: str):
    """The first table shown that has ``column`` (as pandas)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


def test_settings_lists_tokens_and_last_syncs(writable_sample, monkeypatch):
    monkeypatch.setenv("SEGCORE_HOME", str(writable_sample.home))
    monkeypatch.delenv("SEGCORE_PASSWORD", raising=False)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/settings.py").run()
    assert not at.exception
    assert [i.value for i in at.info] == ["No tokens yet: `segcore token create NAME`.",
                                          "No client has synced yet."]
    tokens = Tokens(writable_sample.catalog_path)
    secret = tokens.create("campaigns")
    tokens.create("ops", "admin")
    Memberships(writable_sample).save_settings()  # the service state, as `segcore serve`
    state = State(writable_sample.home)
    state.record_use({"campaigns": ("2026-07-01T10:00:00Z", 3)})
    state.record_sync("campaigns", "VIP", "abc.42", 5, 2)
    at.run()
    assert not at.exception and not at.error
    shown = frame(at, "Scope")
    assert shown["Name"].tolist() == ["campaigns", "ops"]
    assert shown["Scope"].tolist() == ["read", "admin"]
    assert shown["Last used"].tolist() == ["2026-07-01T10:00:00Z", "never"]
    assert shown["Requests"].tolist() == [3, 0]
    assert secret not in shown.to_string()
    syncs = frame(at, "Cursor")
    assert syncs[["Token", "Segment", "Entered", "Left", "Cursor"]].values.tolist() == [
        ["campaigns", "VIP", 5, 2, "abc.42"]]
