"""The demo users: behaviour groups (drive the events) and attributes (the users table)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from segcore.sample import vocab as V

DAY_US = 86_400_000_000

# behaviour groups: sessions per day, cart chance per product session, conversion of a cart
GROUPS = ["casual", "regular", "power", "churned", "whale", "dormant"]
GROUP_P = np.array([0.44, 0.30, 0.08, 0.13, 0.01, 0.04])
SESSION_RATE = np.array([0.2, 0.85, 2.8, 1.1, 1.2, 0.0])
CART_P = np.array([0.035, 0.035, 0.05, 0.035, 0.7, 0.0])
CONV_P = np.array([0.3, 0.3, 0.4, 0.3, 0.85, 0.0])
CASUAL, REGULAR, POWER, CHURNED, WHALE, DORMANT = range(6)
MIN_WHALES = 5
MIN_SUB_PLUS_6 = 5


@dataclass
class Window:
    """The data range in microseconds since the epoch: ``[start, stop)``."""

    start: int
    stop: int
    end_date_days: int  # the end date as days since the epoch

    @property
    def days(self) -> int:
        return (self.stop - self.start) // DAY_US


@dataclass
class UserPlan:
    """Per-user arrays (one entry per user) that drive the event generator."""

    created: np.ndarray  # int64 us
    active_start: np.ndarray  # int64 us
    active_end: np.ndarray  # int64 us
    group: np.ndarray  # int8
    rate: np.ndarray  # sessions per day
    cart_p: np.ndarray
    conv_p: np.ndarray
    app: np.ndarray  # bool: has the mobile app
    open_p: np.ndarray  # chance to open a campaign email (0 without email/opt-in)
    b2b: np.ndarray  # bool


def choice(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    """Vectorised categorical draw (codes 0..len(p)-1)."""
    return np.searchsorted(np.cumsum(p), rng.random(n) * p.sum(), side="right").astype(np.int16)


def _choice_rows(rng: np.random.Generator, p_rows: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Categorical draw where each item picks from its own row of probabilities."""
    cum = np.cumsum(p_rows, axis=1)[rows]
    u = rng.random(len(rows))[:, None] * cum[:, -1:]
    return (u >= cum).sum(axis=1).astype(np.int16)


def plan_users(rng: np.random.Generator, n: int, w: Window) -> tuple[UserPlan, dict]:
    """Draw behaviour and raw attribute codes for ``n`` users."""
    span = w.stop - w.start
    group = choice(rng, GROUP_P, n).astype(np.int8)
    # plant a few big spenders even in small stores
    need = min(MIN_WHALES, n) - int((group == WHALE).sum())
    if need > 0:
        casual = np.flatnonzero(group == CASUAL)
        group[rng.choice(casual, size=min(need, len(casual)), replace=False)] = WHALE

    # sign-up instants: a quarter before the data range, the rest with growth inside it
    before = (rng.random(n) < 0.25) | (group == WHALE)
    created = np.where(
        before,
        w.start - (rng.random(n) * 365 * DAY_US).astype(np.int64) - 1,
        w.start + (np.sqrt(rng.random(n)) * (span - 1)).astype(np.int64),
    )
    active_start = np.maximum(created, w.start)
    active_end = np.full(n, w.stop, dtype=np.int64)
    # churned users stop somewhere before the last 30 days
    churn_hi = w.stop - 30 * DAY_US
    churned = (group == CHURNED) & (active_start + 3 * DAY_US < churn_hi)
    group[(group == CHURNED) & ~churned] = REGULAR
    lo = active_start[churned] + DAY_US
    active_end[churned] = lo + (rng.random(int(churned.sum())) * (churn_hi - lo)).astype(np.int64)
    # big spenders: a burst of purchases, silent for the last 90+ days when the range allows
    whales = group == WHALE
    hi = w.stop - 95 * DAY_US
    if hi - w.start < 10 * DAY_US:
        hi = w.start + span // 2
    dur = np.maximum(hi - w.start, DAY_US)
    active_end[whales] = (
        w.start + dur // 2 + (rng.random(int(whales.sum())) * dur // 2).astype(np.int64)
    )

    rate = SESSION_RATE[group] * rng.lognormal(0.0, 0.6, n)
    cart_p = np.clip(CART_P[group] * rng.lognormal(0.0, 0.3, n), 0, 0.95)
    conv_p = np.clip(CONV_P[group] * rng.lognormal(0.0, 0.2, n), 0, 0.95)

    os_code = choice(rng, V.OS_P, n)
    mobile_os = os_code <= 1
    app = mobile_os & (rng.random(n) < 0.7)
    has_email = rng.random(n) >= 0.08
    email_opt_in = has_email & (rng.random(n) < 0.65)
    open_p = np.where(email_opt_in, rng.beta(2.0, 5.0, n), 0.0)
    b2b = rng.random(n) < 0.35

    codes = {
        "os": os_code,
        "app": app,
        "has_email": has_email,
        "email_opt_in": email_opt_in,
        "b2b": b2b,
        "before": before,
    }
    plan = UserPlan(
        created, active_start, active_end, group, rate, cart_p, conv_p, app, open_p, b2b
    )
    return plan, codes


def _gather(values: list, idx: np.ndarray, mask: np.ndarray | None = None) -> pl.Series:
    """Strings from a vocabulary by code; NULL where ``mask`` is False."""
    out = pl.Series(values).gather(pl.Series(idx.astype(np.uint32)))
    if mask is None:
        return out
    return pl.DataFrame({"v": out, "m": mask}).select(pl.when("m").then("v")).to_series()


def user_ids(n: int) -> pl.Series:
    """``u000001``, ``u000002``, ... (wider past 999,999 users, so ids sort in order)."""
    return (
        pl.select(
            pl.concat_str(
                pl.lit("u"), (pl.int_range(1, n + 1)).cast(pl.String).str.zfill(max(6, len(str(n))))
            )
        )
        .to_series()
        .alias("user_id")
    )


def build_users(
    rng: np.random.Generator, plan: UserPlan, codes: dict, w: Window, total_cents: np.ndarray
) -> pl.DataFrame:
    """The users table (column order and types are fixed: examples and tests rely on them)."""
    n = len(plan.group)
    os_code = codes["os"]
    country = choice(rng, np.array([c[1] for c in V.COUNTRIES]), n)
    n_cities = np.array([len(c[3]) for c in V.COUNTRIES])
    city_p = np.zeros((len(V.COUNTRIES), len(V.CITY_SHARES)))
    for i, k in enumerate(n_cities):  # ok-loop: one row per country
        city_p[i, :k] = V.CITY_SHARES[:k]
    city_code = _choice_rows(rng, city_p, country)
    city_vocab = [c for _, _, _, cities in V.COUNTRIES for c in cities]
    city_offset = np.concatenate([[0], np.cumsum(n_cities)[:-1]])
    first = rng.integers(0, len(V.FIRST_NAMES), n)
    last = rng.integers(0, len(V.LAST_NAMES), n)
    domain = choice(rng, V.EMAIL_DOMAIN_P, n)
    has_phone = rng.random(n) >= 0.15
    phone_digits = rng.integers(100_000_000, 1_000_000_000, n)
    push_tokens = rng.integers(10**11, 10**12, n)
    browser = _choice_rows(rng, V.BROWSER_P, os_code)
    tablet = (os_code <= 1) & (rng.random(n) < 0.15)
    device = np.where(os_code <= 1, np.where(tablet, 2, 0), 1)
    age = np.clip(np.rint(rng.normal(36, 12, n)), 16, 80).astype(np.int64)
    gender = choice(rng, V.GENDER_P, n)
    dept = rng.integers(0, len(V.DEPARTMENTS), n)
    seniority = choice(rng, V.SENIORITY_P, n)
    lead_score = np.clip(np.rint(rng.normal(45, 25, n)), 0, 100).astype(np.int64)
    plan_code = choice(rng, V.PLAN_P, n)
    sub_days = w.end_date_days + rng.integers(-365, 366, n)
    plus6 = rng.choice(n, size=min(n, max(MIN_SUB_PLUS_6, n // 150)), replace=False)
    sub_days[plus6] = w.end_date_days + 6
    sms = rng.random(n) < 0.3
    push = plan.app & (rng.random(n) < 0.6)
    wa_known = rng.random(n) >= 0.25
    wa = rng.random(n) < 0.35
    newsletter = rng.random(n) < 0.6
    beta = rng.random(n) < 0.05
    at_risk_flag = rng.random(n) < 0.5

    b2b = codes["b2b"]
    spent = total_cents / 100.0
    silent = plan.active_end < w.stop - 30 * DAY_US
    df = pl.DataFrame(
        {
            "user_id": user_ids(n),
            "first": _gather(V.FIRST_NAMES, first),
            "last": _gather(V.LAST_NAMES, last),
            "num": pl.Series(np.arange(1, n + 1)),
            "domain": _gather(V.EMAIL_DOMAINS, domain),
            "has_email": codes["has_email"],
            "has_phone": has_phone,
            "prefix": _gather([c[2] for c in V.COUNTRIES], country),
            "digits": phone_digits,
            "app": plan.app,
            "ptok": push_tokens,
            "email_opt_in": codes["email_opt_in"],
            "sms_opt_in": sms,
            "push_opt_in": push,
            "wa": _gather([True, False], np.where(wa, 0, 1), wa_known).cast(pl.Boolean),
            "country": _gather([c[0] for c in V.COUNTRIES], country),
            "city": _gather(city_vocab, city_offset[country] + city_code),
            "age": age,
            "gender": _gather(V.GENDERS, gender),
            "os": _gather(V.OS_LIST, os_code),
            "browser": _gather(V.BROWSERS, browser),
            "device_type": _gather(V.DEVICE_TYPES, device),
            "created_at": plan.created,
            "department": _gather(V.DEPARTMENTS, dept, b2b),
            "seniority": _gather(V.SENIORITIES, seniority, b2b),
            "role": _gather([V.ROLES[d] for d in V.DEPARTMENTS], dept, b2b),
            "lead_score": lead_score,
            "plan": _gather(V.PLANS, plan_code),
            "sub": sub_days.astype(np.int32),
            "spent": spent,
            "newsletter": newsletter & codes["email_opt_in"],
            "beta": beta,
            "churny": (plan.group == CHURNED) & at_risk_flag | (silent & (spent > 0)),
        }
    )
    name = pl.concat_str(pl.col("first"), pl.lit(" "), pl.col("last"))
    local = pl.concat_str(
        pl.col("first").str.to_lowercase(),
        pl.lit("."),
        pl.col("last").str.to_lowercase().str.replace("ü", "ue"),
        pl.col("num").cast(pl.String),
    )
    tag = [
        pl.when(pl.col("spent") > 0).then(pl.lit("Customer")),
        pl.when(pl.col("spent") >= 5000).then(pl.lit("VIP")),
        pl.when(pl.col("newsletter")).then(pl.lit("Newsletter")),
        pl.when(pl.col("churny")).then(pl.lit("Churn risk")),
        pl.when(pl.col("department").is_not_null()).then(pl.lit("B2B")),
        pl.when(pl.col("beta")).then(pl.lit("Beta tester")),
    ]
    return df.select(
        "user_id",
        name.alias("name"),
        pl.when("has_email")
        .then(pl.concat_str(local, pl.lit("@"), pl.col("domain")))
        .alias("email"),
        pl.when("has_phone")
        .then(pl.concat_str(pl.col("prefix"), pl.lit(" "), pl.col("digits").cast(pl.String)))
        .alias("phone"),
        pl.when("app")
        .then(pl.concat_str(pl.lit("pt_"), pl.col("ptok").cast(pl.String)))
        .alias("push_token"),
        "email_opt_in",
        "sms_opt_in",
        "push_opt_in",
        pl.col("wa").alias("whatsapp_opt_in"),
        "country",
        "city",
        "age",
        "gender",
        "os",
        "browser",
        "device_type",
        pl.col("created_at").cast(pl.Datetime("us", "UTC")),
        "department",
        pl.when(pl.col("seniority") == "Head of")
        .then(pl.concat_str(pl.lit("Head of "), pl.col("department")))
        .otherwise(pl.concat_str(pl.col("seniority"), pl.lit(" "), pl.col("role")))
        .alias("title"),
        "lead_score",
        "plan",
        pl.concat_list(tag).list.drop_nulls().alias("tags"),
        pl.col("sub").cast(pl.Date).alias("subscription_end_date"),
        pl.col("spent").alias("total_spent"),
    )
