"""The demo events of one chunk of users, fully vectorised (no loop over rows)."""

from __future__ import annotations

import numpy as np
import polars as pl

from segcore.sample import vocab as V
from segcore.sample.users import DAY_US, WHALE, UserPlan, Window, choice

SEC = 1_000_000
MIN = 60 * SEC
HOUR = 60 * MIN
# weekly seasonality (Monday first) and hour-of-day profile (UTC): shops are busier
# on weekdays and in the evening
DOW_W = np.array([1.0, 1.0, 0.97, 0.95, 0.9, 0.65, 0.6])
HOUR_W = 0.25 + 0.75 * np.exp(-0.5 * ((np.arange(24) - 17) / 4.5) ** 2)
ACCEPT = DOW_W.mean() * HOUR_W.mean() / (DOW_W.max() * HOUR_W.max())
QTY_P = np.array([0.8, 0.15, 0.05])
PRICE = np.array([round(p * 100) for _, _, p in V.PRODUCTS], dtype=np.int64)

EVENT_COLUMNS: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "event": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "event_id": pl.String(),
    "page": pl.String(),
    "url": pl.String(),
    "product": pl.String(),
    "category": pl.String(),
    "price": pl.Float64(),
    "quantity": pl.Int64(),
    "amount": pl.Float64(),
    "payment_method": pl.String(),
    "campaign": pl.String(),
    "form": pl.String(),
    "channel": pl.String(),
}


def _block(ev: int, uidx: np.ndarray, ts: np.ndarray, **cols: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {"u": uidx.astype(np.int32), "ts": ts, "ev": np.full(len(ts), ev, np.int8), **cols}
    )


def _uniform_between(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return lo + (rng.random(len(lo)) * (hi - lo)).astype(np.int64)


def _sessions(rng: np.random.Generator, p: UserPlan, w: Window) -> tuple[np.ndarray, np.ndarray]:
    """Session starts (user index, instant) with weekly and daily seasonality (thinning)."""
    days = (p.active_end - p.active_start) / DAY_US
    n = rng.poisson(p.rate * days / ACCEPT)
    su = np.repeat(np.arange(len(n)), n)
    st = _uniform_between(rng, p.active_start[su], p.active_end[su])
    day = st // DAY_US
    dow = (day + 3) % 7  # 1970-01-01 was a Thursday
    hour = (st - day * DAY_US) // HOUR
    keep = rng.random(len(st)) * DOW_W.max() * HOUR_W.max() < DOW_W[dow] * HOUR_W[hour]
    return su[keep], st[keep]


def _session_events(
    rng: np.random.Generator,
    p: UserPlan,
    su: np.ndarray,
    st: np.ndarray,
    blocks: list[pl.DataFrame],
) -> None:
    """Entry, page views, the product funnel and purchases of each session."""
    s = len(su)
    app = p.app[su]
    # entry: the app, or the home page on the web
    blocks.append(_block(V.EV["app_launched"], su[app], st[app]))
    web = ~app
    blocks.append(
        _block(V.EV["page_viewed"], su[web], st[web], page=np.zeros(int(web.sum()), np.int8))
    )
    # more page views
    k = rng.poisson(0.9, s)
    rs = np.repeat(np.arange(s), k)
    blocks.append(
        _block(
            V.EV["page_viewed"],
            su[rs],
            st[rs] + rng.integers(10 * SEC, 15 * MIN, len(rs)),
            page=choice(rng, V.PAGE_P, len(rs)).astype(np.int8),
        )
    )
    # product views: the first is the session's focus product
    m = rng.poisson(1.4, s)
    whale = p.group[su] == WHALE
    focus = np.where(whale, choice(rng, V.WHALE_P, s), choice(rng, V.PRODUCT_P, s))
    price = np.rint(PRICE[focus] * rng.uniform(0.9, 1.05, s)).astype(np.int64)
    rs = np.repeat(np.arange(s), m)
    first = np.ones(len(rs), bool)
    first[1:] = rs[1:] != rs[:-1]
    prod = np.where(first, focus[rs], choice(rng, V.PRODUCT_P, len(rs)))
    pprice = np.where(first, price[rs], PRICE[prod])
    blocks.append(
        _block(
            V.EV["product_viewed"],
            su[rs],
            st[rs] + np.where(first, 30 * SEC, rng.integers(MIN, 10 * MIN, len(rs))),
            product=prod.astype(np.int16),
            price=pprice,
        )
    )
    # cart after browsing; some carts convert within minutes, the rest are abandoned
    cart = (m > 0) & (rng.random(s) < p.cart_p[su])
    cart_at = st + 10 * MIN + rng.integers(0, 5 * MIN, s)
    qty = (choice(rng, QTY_P, s) + 1).astype(np.int8)
    blocks.append(
        _block(
            V.EV["added_to_cart"],
            su[cart],
            cart_at[cart],
            product=focus[cart].astype(np.int16),
            price=price[cart],
            qty=qty[cart],
        )
    )
    buy = cart & (rng.random(s) < p.conv_p[su])
    blocks.append(
        _block(
            V.EV["charged"],
            su[buy],
            cart_at[buy] + rng.integers(20 * SEC, 8 * MIN, int(buy.sum())),
            product=focus[buy].astype(np.int16),
            price=price[buy],
            qty=qty[buy],
            amount=price[buy] * qty[buy],
            pay=choice(rng, V.PAYMENT_P, int(buy.sum())).astype(np.int8),
        )
    )


def _campaign_slots(w: Window) -> np.ndarray:
    """Campaign sends: every Tuesday and Thursday at 09:00 UTC in the data range."""
    days = np.arange(w.start // DAY_US, w.stop // DAY_US)
    dow = (days + 3) % 7
    return days[(dow == 1) | (dow == 3)] * DAY_US + 9 * HOUR


def _email_events(
    rng: np.random.Generator, p: UserPlan, w: Window, blocks: list[pl.DataFrame]
) -> None:
    slots = _campaign_slots(w)
    if len(slots) == 0:
        return
    lo = np.searchsorted(slots, p.active_start)
    hi = np.searchsorted(slots, p.active_end)
    n = rng.binomial(np.maximum(hi - lo, 0), p.open_p)
    u = np.repeat(np.arange(len(n)), n)
    slot = lo[u] + (rng.random(len(u)) * (hi - lo)[u]).astype(np.int64)
    ts = slots[slot] + rng.exponential(4 * HOUR, len(u)).astype(np.int64) + SEC
    keep = ts < p.active_end[u]
    u, ts, slot = u[keep], ts[keep], slot[keep]
    camp = (slot % len(V.CAMPAIGNS)).astype(np.int8)
    blocks.append(_block(V.EV["email_opened"], u, ts, camp=camp))
    c = rng.random(len(u)) < 0.25
    blocks.append(
        _block(
            V.EV["email_clicked"],
            u[c],
            ts[c] + rng.integers(5 * SEC, 10 * MIN, int(c.sum())),
            camp=camp[c],
        )
    )


def _other_events(
    rng: np.random.Generator, p: UserPlan, w: Window, blocks: list[pl.DataFrame]
) -> None:
    n_users = len(p.group)
    # sign-ups inside the range
    new = p.created >= w.start
    blocks.append(_block(V.EV["signed_up"], np.flatnonzero(new), p.created[new]))
    days = (p.active_end - p.active_start) / DAY_US
    active = p.rate > 0
    # forms (B2B contacts), some demo requests lead to an appointment
    n = rng.poisson(np.where(p.b2b & active, 0.012, 0.002 * active) * days)
    u = np.repeat(np.arange(n_users), n)
    ts = _uniform_between(rng, p.active_start[u], p.active_end[u])
    form = choice(rng, V.FORM_P, len(u)).astype(np.int8)
    blocks.append(_block(V.EV["form_submitted"], u, ts, form=form))
    appt = (form == 0) & (rng.random(len(u)) < 0.5)
    ats = ts[appt] + rng.integers(2 * HOUR, 4 * DAY_US, int(appt.sum()))
    ok = ats < p.active_end[u[appt]]
    blocks.append(_block(V.EV["appointment_booked"], u[appt][ok], ats[ok]))
    # support conversations
    n = rng.poisson(0.015 * active * days)
    u = np.repeat(np.arange(n_users), n)
    blocks.append(
        _block(
            V.EV["conversation_started"],
            u,
            _uniform_between(rng, p.active_start[u], p.active_end[u]),
            chan=choice(rng, V.CHANNEL_P, len(u)).astype(np.int8),
        )
    )


def _strings(values: list | pl.Series, code: str) -> pl.Expr:
    """Vocabulary strings by the integer codes of column ``code`` (NULL stays NULL)."""
    return pl.lit(pl.Series(values, dtype=pl.String)).gather(pl.col(code).cast(pl.UInt32))


def generate_chunk(
    rng: np.random.Generator, p: UserPlan, w: Window, user_ids: pl.Series, first_event_id: int
) -> tuple[pl.DataFrame, np.ndarray]:
    """Events of one chunk of users, sorted by user, ts; and each user's charged cents."""
    blocks: list[pl.DataFrame] = []
    su, st = _sessions(rng, p, w)
    _session_events(rng, p, su, st, blocks)
    _email_events(rng, p, w, blocks)
    _other_events(rng, p, w, blocks)
    span = w.stop - w.start
    raw = (
        pl.concat(blocks, how="diagonal_relaxed")
        .filter(pl.col("ts") < w.stop)
        # one int64 key (user, then instant); a stable sort keeps ties in block order
        .with_columns((pl.col("u").cast(pl.Int64) * span + (pl.col("ts") - w.start)).alias("k"))
        .sort("k", maintain_order=True)
    )
    charged = raw.filter(pl.col("ev") == V.EV["charged"])
    cents = np.bincount(
        charged["u"].to_numpy(), weights=charged["amount"].to_numpy(), minlength=len(p.group)
    )
    urls = [V.URL_BASE + ("" if pg == "home" else pg) for pg in V.PAGES]
    first, n = first_event_id, raw.height
    out = (
        raw.lazy()
        .select(
            _strings(user_ids, "u").alias("user_id"),
            _strings(V.EVENT_NAMES, "ev").alias("event"),
            pl.col("ts").cast(pl.Datetime("us", "UTC")),
            pl.concat_str(
                pl.lit("e"), pl.int_range(first, first + n).cast(pl.String).str.zfill(10)
            ).alias("event_id"),
            _strings(V.PAGES, "page").alias("page"),
            _strings(urls, "page").alias("url"),
            _strings([x[0] for x in V.PRODUCTS], "product").alias("product"),
            _strings([x[1] for x in V.PRODUCTS], "product").alias("category"),
            (pl.col("price") / 100.0).alias("price"),
            pl.col("qty").cast(pl.Int64).alias("quantity"),
            (pl.col("amount") / 100.0).alias("amount"),
            _strings(V.PAYMENT_METHODS, "pay").alias("payment_method"),
            _strings(V.CAMPAIGNS, "camp").alias("campaign"),
            _strings(V.FORMS, "form").alias("form"),
            _strings(V.CHANNELS, "chan").alias("channel"),
        )
        .collect()
    )
    return out, np.rint(cents).astype(np.int64)
