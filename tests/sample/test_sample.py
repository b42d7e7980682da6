"""The demo data generator: determinism, schema, totals, and the planted behaviour."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from segcore.cli import main
from segcore.errors import UsageError
from segcore.sample import generate

END = "2026-06-30"
T = dt.datetime(2026, 7, 1, tzinfo=dt.timezone.utc)  # as of END = end of that day
ARGS = {"users": 1000, "days": 120, "end": END, "seed": 7}


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    h = tmp_path_factory.mktemp("sample")
    generate(h, **ARGS)
    return h


@pytest.fixture(scope="module")
def events(home) -> pl.DataFrame:
    return pl.read_parquet(home / "events")


@pytest.fixture(scope="module")
def users(home) -> pl.DataFrame:
    return pl.read_parquet(home / "users")


def ago(days: float) -> dt.datetime:
    return T - dt.timedelta(days=days)


def members(df: pl.DataFrame) -> set[str]:
    return set(df["user_id"].to_list())


def n_members(df: pl.DataFrame) -> int:
    return df["user_id"].n_unique()


def is_cents(s: pl.Series) -> bool:
    return bool(((s * 100 - (s * 100).round()).abs() < 1e-6).all())


def _digests(home: Path) -> dict[str, str]:
    return {
        str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*.parquet"))
    }


# ---------------------------------------------------------------- files and schema
def test_same_arguments_give_identical_files(tmp_path, home):
    generate(tmp_path / "again", **ARGS)
    first, second = _digests(home), _digests(tmp_path / "again")
    assert list(first) == ["events/part-00000.parquet", "users/users.parquet"]
    assert first == second


def test_another_seed_gives_other_data(tmp_path, home):
    generate(tmp_path / "other", **{**ARGS, "seed": 8})
    assert _digests(home) != _digests(tmp_path / "other")


USER_SCHEMA = {
    "user_id": pl.String,
    "name": pl.String,
    "email": pl.String,
    "phone": pl.String,
    "push_token": pl.String,
    "email_opt_in": pl.Boolean,
    "sms_opt_in": pl.Boolean,
    "push_opt_in": pl.Boolean,
    "whatsapp_opt_in": pl.Boolean,
    "country": pl.String,
    "city": pl.String,
    "age": pl.Int64,
    "gender": pl.String,
    "os": pl.String,
    "browser": pl.String,
    "device_type": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "department": pl.String,
    "title": pl.String,
    "lead_score": pl.Int64,
    "plan": pl.String,
    "tags": pl.List(pl.String),
    "subscription_end_date": pl.Date,
    "total_spent": pl.Float64,
}
EVENT_SCHEMA = {
    "user_id": pl.String,
    "event": pl.String,
    "ts": pl.Datetime("us", "UTC"),
    "event_id": pl.String,
    "page": pl.String,
    "url": pl.String,
    "product": pl.String,
    "category": pl.String,
    "price": pl.Float64,
    "quantity": pl.Int64,
    "amount": pl.Float64,
    "payment_method": pl.String,
    "campaign": pl.String,
    "form": pl.String,
    "channel": pl.String,
}


def test_schemas_exactly(users, events):
    assert dict(users.schema) == USER_SCHEMA
    assert dict(events.schema) == EVENT_SCHEMA


def test_sizes_ids_and_order(users, events):
    assert users.height == 1000
    assert users["user_id"][0] == "u000001" and users["user_id"][-1] == "u001000"
    assert users["user_id"].n_unique() == 1000
    assert events["event_id"].n_unique() == events.height
    assert events["event_id"].null_count() == 0
    assert 100_000 < events.height < 300_000
    # the store's layout: sorted by event name, then time, then user (stable on event_id)
    assert events.equals(events.sort(["event", "ts", "user_id", "event_id"]))
    assert set(events["user_id"].unique()) <= set(users["user_id"])
    assert set(events["event"].unique()) == {
        "signed_up",
        "app_launched",
        "page_viewed",
        "product_viewed",
        "added_to_cart",
        "charged",
        "email_opened",
        "email_clicked",
        "form_submitted",
        "appointment_booked",
        "conversation_started",
    }


def test_events_cover_the_requested_days(events):
    first, last = events["ts"].min(), events["ts"].max()
    assert first >= dt.datetime(2026, 3, 3, tzinfo=dt.timezone.utc)  # 120 days ending 2026-06-30
    assert first < dt.datetime(2026, 3, 4, tzinfo=dt.timezone.utc)
    assert last < T and last >= ago(1)


def test_total_spent_is_the_sum_of_charged_amounts(users, events):
    sums = (
        events.filter(pl.col("event") == "charged")
        .group_by("user_id")
        .agg(pl.col("amount").sum().alias("s"))
    )
    joined = users.join(sums, on="user_id", how="left").with_columns(pl.col("s").fill_null(0.0))
    assert (joined["total_spent"] - joined["s"]).abs().max() < 1e-6
    assert is_cents(joined["total_spent"])
    charged = events.filter(pl.col("event") == "charged")
    assert ((charged["amount"] - charged["price"] * charged["quantity"]).abs() < 1e-6).all()
    assert is_cents(charged["amount"]) and is_cents(charged["price"])


def test_properties_only_on_their_events(events):
    def null_outside(col: str, names: list[str]) -> bool:
        return (
            events.filter(~pl.col("event").is_in(names))[col].null_count()
            == events.filter(~pl.col("event").is_in(names)).height
        )

    assert null_outside("page", ["page_viewed"])
    assert null_outside("amount", ["charged"])
    assert null_outside("campaign", ["email_opened", "email_clicked"])
    assert null_outside("form", ["form_submitted"])
    assert null_outside("channel", ["conversation_started"])
    assert events.filter(pl.col("event") == "charged")["payment_method"].null_count() == 0
    assert events.filter(pl.col("event") == "page_viewed")["url"].null_count() == 0


# ---------------------------------------------------------------- attributes
def test_attribute_values(users):
    assert users.filter(pl.col("email").str.ends_with("@company.com")).height > 0
    assert 0 < users["email"].null_count() < 200
    assert 0 < users["phone"].null_count() < 300
    assert 0 < users["whatsapp_opt_in"].null_count() < 400
    app = users.filter(pl.col("push_token").is_not_null())
    assert app.height > 100 and set(app["os"].unique()) == {"iOS", "Android"}
    assert users["age"].min() >= 16 and users["age"].max() <= 80
    assert users["lead_score"].min() >= 0 and users["lead_score"].max() <= 100
    assert set(users["plan"].unique()) == {"free", "trial", "pro", "enterprise"}
    assert {"US", "IN", "DE", "BR", "GB", "FR", "JP", "CA"} <= set(users["country"].unique())
    # every city belongs to exactly one country
    assert users.group_by("city").agg(pl.col("country").n_unique())["country"].max() == 1
    assert users.filter(pl.col("city") == "London")["country"].unique().to_list() == ["GB"]
    tags = set(users["tags"].explode().drop_nulls().unique())
    assert {"Customer", "VIP", "Newsletter", "Churn risk"} <= tags


def test_growth_and_signups(users, events):
    signed = events.filter(pl.col("event") == "signed_up")
    in_range = users.filter(pl.col("created_at") >= dt.datetime(2026, 3, 3, tzinfo=dt.timezone.utc))
    assert signed.height == in_range.height == signed["user_id"].n_unique()
    same = signed.join(in_range, on="user_id").filter(pl.col("ts") == pl.col("created_at"))
    assert same.height == signed.height
    assert users["created_at"].min() < dt.datetime(2026, 3, 3, tzinfo=dt.timezone.utc)
    # more sign-ups in the last 40 days than in the first 40
    assert (
        signed.filter(pl.col("ts") >= ago(40)).height
        > 1.5 * signed.filter(pl.col("ts") < ago(80)).height
    )
    # nobody acts before signing up
    first = events.group_by("user_id").agg(pl.col("ts").min().alias("first"))
    assert first.join(users, on="user_id").filter(pl.col("first") < pl.col("created_at")).is_empty()


def test_weekly_seasonality(events):
    web = events.filter(pl.col("event").is_in(["page_viewed", "app_launched"]))
    by_dow = web.group_by(pl.col("ts").dt.weekday().alias("dow")).len()
    weekday = by_dow.filter(pl.col("dow") <= 5)["len"].mean()
    weekend = by_dow.filter(pl.col("dow") >= 6)["len"].mean()
    assert weekend < 0.85 * weekday


def test_funnel_drop_off(events):
    last = events.filter(pl.col("ts") >= ago(30))
    flags = (
        last.group_by("user_id")
        .agg(
            (pl.col("event") == e).any().alias(e)
            for e in ["product_viewed", "added_to_cart", "charged"]
        )
        .filter("product_viewed")
    )
    cart, charged = flags["added_to_cart"].mean(), flags["charged"].mean()
    assert 0.2 < cart < 0.5
    assert 0.08 < charged < 0.25
    assert charged < cart


# ---------------------------------------------------------------- planted example segments
def _ev(
    events: pl.DataFrame, name: str, since: dt.datetime | None = None, until: dt.datetime = T
) -> pl.DataFrame:
    out = events.filter(pl.col("event") == name, pl.col("ts") < until)
    return out if since is None else out.filter(pl.col("ts") >= since)


def _active(events: pl.DataFrame, since: dt.datetime, until: dt.datetime = T) -> set[str]:
    return members(events.filter(pl.col("ts") >= since, pl.col("ts") < until))


def _counts(df: pl.DataFrame) -> pl.DataFrame:
    return df.group_by("user_id").len()


def test_subscription_ends_in_six_days(users):
    assert users.filter(pl.col("subscription_end_date") == dt.date(2026, 7, 6)).height >= 5
    span = users["subscription_end_date"]
    assert span.min() < dt.date(2025, 9, 1) and span.max() > dt.date(2027, 4, 1)


def test_junior_product_people(users):
    hit = users.filter(
        pl.col("department").is_in(["Product", "Engineering"]),
        pl.col("title").str.contains("Junior|Associate"),
    )
    assert hit.height >= 10


def test_email_opt_in(users):
    assert 300 < users["email_opt_in"].sum() < 900


def test_pricing_page_more_than_twice(events):
    pricing = events.filter(pl.col("event") == "page_viewed", pl.col("page") == "pricing")
    assert _counts(pricing).filter(pl.col("len") > 2).height >= 20


def test_buyers_and_high_spenders(users, events):
    assert _counts(_ev(events, "charged")).filter(pl.col("len") >= 3).height >= 20
    assert users.filter(pl.col("total_spent") > 700).height >= 20
    assert users.filter(pl.col("total_spent") > 5000).height >= 5


def test_city_buyers_who_opened_an_email(users, events):
    both = members(_ev(events, "charged", ago(30))) & members(_ev(events, "email_opened", ago(30)))
    by_city = users.filter(pl.col("user_id").is_in(list(both))).group_by("city").len()
    top = dict(by_city.iter_rows())
    assert top.get("New York", 0) >= 5 and len(top) >= 5


def test_loyal_but_inactive(users, events):
    recent = members(_ev(events, "charged", ago(90)))
    loyal = users.filter(pl.col("total_spent") > 10_000, ~pl.col("user_id").is_in(list(recent)))
    assert loyal.height >= 3


def test_hot_leads(users):
    hot = users.filter(pl.col("lead_score") > 70, pl.col("created_at") >= ago(14))
    assert hot.height >= 10


def test_customers_at_risk(users, events):
    recent = _active(events, ago(30))
    risk = users.filter(
        pl.col("tags").list.contains("Customer"), ~pl.col("user_id").is_in(list(recent))
    )
    assert risk.height >= 10


def _cart_outcomes(events: pl.DataFrame) -> pl.DataFrame:
    carts = _ev(events, "added_to_cart").select("user_id", pl.col("ts").alias("a"))
    buys = _ev(events, "charged").select("user_id", pl.col("ts").alias("b"))
    pairs = carts.join(buys, on="user_id", how="left").with_columns(
        ((pl.col("b") > pl.col("a")) & (pl.col("b") <= pl.col("a") + pl.duration(minutes=10)))
        .fill_null(False)
        .alias("hit")
    )
    return pairs.group_by("user_id", "a").agg(pl.col("hit").any())


def test_cart_abandoners_and_quick_converters(events):
    out = _cart_outcomes(events)
    abandoned = out.filter(~pl.col("hit"), pl.col("a") + pl.duration(minutes=10) < T)
    converted = out.filter("hit")
    assert n_members(abandoned) >= 50 and n_members(converted) >= 50
    # carts that convert do so within minutes
    charged = (
        _ev(events, "charged")
        .join(
            _ev(events, "added_to_cart").select("user_id", pl.col("ts").alias("a")),
            on="user_id",
        )
        .filter(pl.col("a") < pl.col("ts"), pl.col("ts") - pl.col("a") <= dt.timedelta(minutes=10))
    )
    assert charged["ts"].n_unique() == _ev(events, "charged").height


def test_frequent_buyers(events):
    assert _counts(_ev(events, "charged", ago(30))).filter(pl.col("len") >= 3).height >= 5


def test_once_frequent_users_who_stopped(events):
    before = _counts(events.filter(pl.col("ts") >= ago(180), pl.col("ts") < ago(90)))
    frequent = members(before.filter(pl.col("len") >= 20))
    stopped = frequent - _active(events, ago(90))
    assert len(stopped) >= 3


def test_tv_buyers_last_ten_days(events):
    tv = _ev(events, "charged", ago(10)).filter(pl.col("product").str.contains("TV"))
    assert n_members(tv) >= 3


def test_visited_last_month_not_last_week(events):
    month = members(_ev(events, "page_viewed", ago(30)))
    week = members(_ev(events, "page_viewed", ago(7)))
    assert len(month - week) >= 50


def test_first_big_purchase_in_last_30_days(events):
    big = _ev(events, "charged").filter(pl.col("amount") > 500)
    first = big.group_by("user_id").agg(pl.col("ts").min())
    assert first.filter(pl.col("ts") >= ago(30)).height >= 5


def test_app_launched_in_five_of_last_seven_weeks(events):
    launches = _ev(events, "app_launched", ago(49)).with_columns(
        ((pl.lit(T) - pl.col("ts")).dt.total_days() // 7).alias("week")
    )
    weeks = launches.group_by("user_id").agg(pl.col("week").n_unique())
    assert weeks.filter(pl.col("week") >= 5).height >= 20


# ---------------------------------------------------------------- the command line
def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_sample_json_and_refusal(tmp_path, capsys):
    h = str(tmp_path / "s")
    code, out, err = run(
        capsys,
        "sample",
        "--home",
        h,
        "--users",
        "200",
        "--days",
        "20",
        "--end",
        END,
        "--seed",
        "1",
        "--json",
    )
    assert code == 0 and err == ""
    summary = json.loads(out)
    events = pl.read_parquet(Path(h) / "events")
    assert summary["users"] == 200 and summary["events"] == events.height
    assert summary["first_day"] == "2026-06-11" and summary["last_day"] == END
    assert summary["events_per_second"] > 0
    before = _digests(Path(h))
    # a store with data is not overwritten without --force
    code, out, err = run(capsys, "sample", "--home", h, "--users", "100", "--end", END)
    assert code == 2 and out == ""
    assert (
        err.strip() == f"error: {h} already holds data; add --force to replace it with sample data"
    )
    assert _digests(Path(h)) == before
    code, out, err = run(
        capsys, "sample", "--home", h, "--users", "100", "--days", "10", "--end", END, "--force"
    )
    assert code == 0 and out.startswith("wrote 100 users and ")
    assert "events/s" in out
    assert pl.read_parquet(Path(h) / "users").height == 100
    # no temp left; the event statistics beside the events, as after an import
    assert sorted(p.name for p in Path(h).iterdir()) == [".event_stats.json", "events", "users"]


def test_cli_sample_bad_arguments(tmp_path, capsys):
    h = str(tmp_path / "s")
    with pytest.raises(SystemExit) as exc:
        main(["sample", "--home", h, "--users", "0"])
    assert exc.value.code == 2 and capsys.readouterr().err == (
        "error: segcore sample: argument --users: expected a whole number from 1 to "
        "50,000,000, got '0'\n"
    )
    code, _, err = run(capsys, "sample", "--home", h, "--end", "2026-13-01")
    assert code == 2 and err.strip() == "error: bad end date '2026-13-01': expected YYYY-MM-DD"
    with pytest.raises(SystemExit) as exc:
        main(["sample", "--home", h, "--days", "x"])
    assert exc.value.code == 2 and "expected a whole number from 1 to 3,650, got 'x'" in (
        capsys.readouterr().err
    )
    assert not (Path(h) / "events").exists()
    with pytest.raises(UsageError, match="--days must be at least 1"):
        generate(h, users=10, days=0)


def test_end_defaults_to_today(tmp_path):
    summary = generate(tmp_path / "t", users=20, days=3, seed=2)
    assert summary["last_day"] == dt.datetime.now(dt.timezone.utc).date().isoformat()


def test_several_event_files_for_many_users(tmp_path, monkeypatch):
    import segcore.sample as sample

    monkeypatch.setattr(sample, "CHUNK_USERS", 120)
    summary = generate(tmp_path / "m", users=300, days=20, end=END, seed=5)
    files = sorted(p.name for p in (tmp_path / "m" / "events").iterdir())
    assert files == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    events = pl.read_parquet(tmp_path / "m" / "events")
    assert events.height == summary["events"] and summary["event_files"] == 3
    assert events["event_id"].n_unique() == events.height
    for f in files:
        part = pl.read_parquet(tmp_path / "m" / "events" / f)
        assert part.equals(part.sort(["event", "ts", "user_id", "event_id"]))
    users = pl.read_parquet(tmp_path / "m" / "users")
    sums = (
        events.filter(pl.col("event") == "charged").group_by("user_id").agg(pl.col("amount").sum())
    )
    check = users.join(sums, on="user_id", how="left").with_columns(pl.col("amount").fill_null(0.0))
    assert (check["total_spent"] - check["amount"]).abs().max() < 1e-6


def test_cli_in_a_subprocess(tmp_path):
    h = str(tmp_path / "p")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "segcore",
            "sample",
            "--home",
            h,
            "--users",
            "50",
            "--days",
            "7",
            "--end",
            END,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress line when stderr is not a terminal
    assert json.loads(done.stdout)["users"] == 50
    done = subprocess.run(
        [sys.executable, "-m", "segcore", "info", "--home", h, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and json.loads(done.stdout)["users"] == 50


def test_a_failed_generation_leaves_the_old_store(tmp_path, monkeypatch):
    import segcore.sample as sample

    h = tmp_path / "keep"
    generate(h, users=150, days=10, end=END, seed=1)
    before = _digests(h)

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(sample, "generate_chunk", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        generate(h, users=150, days=10, end=END, seed=2)
    assert _digests(h) == before
    assert sorted(p.name for p in h.iterdir()) == [".event_stats.json", "events", "users"]


def test_store_folder_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    code, _, err = run(capsys, "sample", "--home", str(f / "sub"), "--users", "5")
    assert code == 2 and err.startswith(f"error: cannot create the store folder {f / 'sub'}")


def test_progress_line_on_a_terminal(monkeypatch):
    import io

    from segcore.cli import data

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    fake = Tty()
    monkeypatch.setattr(sys, "stderr", fake)
    show = data._progress_printer()
    assert show is not None
    show(0.5, "1,000 events")
    show(1.0, "2,000 events")
    assert fake.getvalue() == (
        "\rgenerating:  50%  1,000 events\x1b[K\rgenerating: 100%  2,000 events\x1b[K\n"
    )
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert data._progress_printer() is None
