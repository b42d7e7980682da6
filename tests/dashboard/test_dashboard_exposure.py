"""What the dashboard exposes (issue 21, item 5): bind address, password throttling, downloads.

The real-server checks (started from another folder it listens on 127.0.0.1 only; a
download URL fetched without the signed-in browser's cookie is 404; wrong passwords are
throttled in Chromium) are in ``tests/dashboard/test_browser.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit import config
from streamlit.runtime.media_file_storage import MediaFileKind, MediaFileStorageError
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest
from streamlit.web.server.starlette.starlette_app_utils import generate_xsrf_token_string

from dashboard import exposure

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
SIGN_IN = "FormSubmitter:login-Sign in"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    """The process-wide throttle on a clock the test moves; cleared before and after."""
    c = Clock()
    monkeypatch.setattr(exposure.THROTTLE, "clock", c)
    exposure.THROTTLE.reset()
    yield c
    exposure.THROTTLE.reset()


@pytest.fixture
def store(writable_sample, monkeypatch):
    monkeypatch.setenv("SEGCORE_HOME", str(writable_sample.home))
    monkeypatch.delenv("SEGCORE_ALLOW_REMOTE", raising=False)
    return writable_sample


def _try(at: AppTest, password: str) -> list[str]:
    at.text_input(key="auth_password").input(password)
    at.button(key=SIGN_IN).click().run()
    return [e.value for e in at.error]


# ------------------------------------------------------------------------ password
def test_session_waits_grow_after_three_wrong_passwords():
    waits = [exposure.session_wait(n) for n in range(12)]
    assert waits == [0, 0, 0, 5, 10, 20, 40, 80, 160, 300, 300, 300]


def test_throttle_per_session_and_across_sessions(clock):
    t = exposure.THROTTLE
    assert t.wait(0, None) == 0
    last = None
    for _ in range(3):
        last = t.failed()
    assert t.wait(3, last) == 5.0
    clock.now += 4.0
    assert t.wait(3, last) == pytest.approx(1.0)
    clock.now += 1.0
    assert t.wait(3, last) == 0
    # ten wrong passwords within a minute, from any sessions: everyone waits
    for _ in range(7):
        t.failed()
    assert t.wait(0, None) == pytest.approx(55.0)  # the oldest failure leaves the window
    clock.now += 55.0
    assert t.wait(0, None) == 0


def test_passwords_compare_in_full():
    assert exposure.same_secret("s3cret", "s3cret")
    assert exposure.same_secret("пароль 🔑", "пароль 🔑")
    for other in ("", "s3cre", "s3cret ", "S3cret", "s3cret" * 1000):
        assert not exposure.same_secret(other, "s3cret")


def test_wrong_passwords_are_throttled_then_allowed_again(store, monkeypatch, clock):
    monkeypatch.setenv("SEGCORE_PASSWORD", "s3cret")
    at = AppTest.from_file(APP, default_timeout=60).run()
    for _ in range(3):
        assert _try(at, "wrong") == ["Wrong password."]
    # a fourth try, even the right password, must wait 5 s and shows nothing
    assert _try(at, "s3cret") == ["Too many wrong passwords: try again in 5 s."]
    assert not at.metric
    clock.now += 5.0
    assert _try(at, "s3cret") == []
    assert at.metric and not at.exception


def test_many_sessions_share_one_limit(store, monkeypatch, clock):
    monkeypatch.setenv("SEGCORE_PASSWORD", "s3cret")
    for _ in range(5):  # five "attackers", two tries each: ten wrong passwords in a minute
        at = AppTest.from_file(APP, default_timeout=60).run()
        assert _try(at, "a") == ["Wrong password."]
        assert _try(at, "b") == ["Wrong password."]
    fresh = AppTest.from_file(APP, default_timeout=60).run()
    assert _try(fresh, "s3cret") == ["Too many wrong passwords: try again in 60 s."]
    clock.now += 60.0
    assert _try(fresh, "s3cret") == []
    assert fresh.metric


# ------------------------------------------------------------------------ bind address
@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("unix:///tmp/segcore.sock", True),
        (None, False),
        ("", False),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("example.com", False),
    ],
)
def test_loopback_addresses(address, loopback):
    assert exposure.bound_to_loopback(address) is loopback


@pytest.fixture
def on_all_interfaces():
    config.set_option("server.address", "0.0.0.0")
    yield
    config.set_option("server.address", "127.0.0.1")


@pytest.mark.parametrize(
    ("env", "served"),
    [
        ({}, False),
        ({"SEGCORE_ALLOW_REMOTE": "1"}, False),  # the network, and no password: refused
        ({"SEGCORE_PASSWORD": "s3cret"}, False),
        ({"SEGCORE_ALLOW_REMOTE": "1", "SEGCORE_PASSWORD": "s3cret"}, True),
    ],
)
def test_listening_beyond_loopback_needs_opt_in_and_password(
    store, monkeypatch, on_all_interfaces, env, served
):
    monkeypatch.delenv("SEGCORE_PASSWORD", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception and not at.metric and not at.dataframe  # no data either way
    errors = [e.value for e in at.error]
    if served:
        assert errors == [] and at.text_input(key="auth_password")
    else:
        assert len(errors) == 1
        assert errors[0].startswith("The dashboard is listening on 0.0.0.0, not only on this ")
        assert "SEGCORE_ALLOW_REMOTE=1 and SEGCORE_PASSWORD" in errors[0]
        assert not [t for t in at.text_input if t.key == "auth_password"]


def test_the_bind_address_lives_next_to_the_script():
    """Streamlit reads ``<script folder>/.streamlit/config.toml`` from any working folder."""
    text = (Path(APP).parent / ".streamlit" / "config.toml").read_text()
    server = text.split("[server]", 1)[1].split("\n[", 1)[0]
    assert 'address = "127.0.0.1"' in server
    assert not (Path(APP).parents[1] / ".streamlit" / "config.toml").exists()


# ------------------------------------------------------------------------ downloads
def _route(storage, file_name: str, cookies: dict[str, str]):
    """What Streamlit's /media/ route does: ``get_file`` with ``request`` in its frame."""

    class Request:
        pass

    request = Request()
    request.cookies = cookies
    return storage.get_file(file_name)


def test_downloads_need_a_signed_in_browser():
    storage = MemoryMediaFileStorage("/media")
    assert exposure.guard_downloads(storage, password_required=True)
    file_id = storage.load_and_get_id(b"u1,ann@x.com\n", "text/csv", MediaFileKind.DOWNLOADABLE)
    image_id = storage.load_and_get_id(b"\x89PNG", "image/png", MediaFileKind.MEDIA)
    url = storage.get_url(file_id)
    assert url == f"/media/{file_id}.csv"  # generating the URL is not a fetch
    mine = generate_xsrf_token_string()
    stranger = generate_xsrf_token_string()
    assert exposure.sign_in_browser(mine)
    for cookies in ({}, {"_streamlit_xsrf": stranger}, {"_streamlit_xsrf": "garbage"}):
        with pytest.raises(MediaFileStorageError):
            _route(storage, f"{file_id}.csv", cookies)
        with pytest.raises(MediaFileStorageError):
            _route(storage, file_id, cookies)  # the bare id is no way around
    with pytest.raises(MediaFileStorageError):
        storage.get_file(f"{file_id}.csv")  # no request at all: refused
    assert _route(storage, f"{file_id}.csv", {"_streamlit_xsrf": mine}).content.startswith(b"u1")
    # the same token re-masked (a later page load of the same browser) still works
    from streamlit.web.server.starlette.starlette_app_utils import decode_xsrf_token_string

    token, ts = decode_xsrf_token_string(mine)
    again = generate_xsrf_token_string(token, ts)
    assert again != mine and _route(storage, file_id, {"_streamlit_xsrf": again})
    # images and other media are not member data: served as before
    assert _route(storage, f"{image_id}.png", {}).content == b"\x89PNG"
    # without a password there is no gate to follow
    assert exposure.guard_downloads(storage, password_required=False)
    assert _route(storage, f"{file_id}.csv", {}).content.startswith(b"u1")


def test_downloads_are_disabled_where_they_cannot_be_guarded():
    assert exposure.guard_downloads(None, password_required=True) is False
    assert exposure.guard_downloads(object(), password_required=True) is False


# ------------------------------------------------------------------------ builder
def test_builder_shows_a_huge_number_as_a_rule_error(store, monkeypatch):
    """Issue 21: a literal of over 4,300 digits was a traceback in the builder."""
    monkeypatch.delenv("SEGCORE_PASSWORD", raising=False)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/builder.py").run()
    at.text_area(key="b_text").input("age > " + "9" * 5000).run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "Line 1, column 7: number 9999999999999999...99999999 (5,000 characters) is out of "
        "range (integers go up to 9223372036854775807)"
    ]
