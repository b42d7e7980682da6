"""Funnels: steps, window, range, options, segments; charts and drop-off segments."""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl
import streamlit as st

from dashboard import cached, charts, state
from dashboard.widgets import (
    fmt_int,
    fmt_pct,
    fmt_seconds,
    friendly,
    guard,
    partial_periods,
    segment_names,
    week_note,
)
from segcore.engine.polars.evaluate import event_filter
from segcore.errors import SegcoreError
from segcore.lang import durations
from segcore.lang.durations import parse_duration
from segcore.query import (
    DateRange,
    Exclusion,
    FunnelQuery,
    FunnelTrendQuery,
    Step,
    save_dropoffs,
    save_funnel,
    saved_funnel,
)

store = state.store()
as_of = state.as_of()
ss = st.session_state
st.title("Funnels")

events = store.event_names()
names = segment_names()
info = cached.info()
if not events:
    st.info("No events yet: import some on the Data page.")
    st.stop()

BETWEEN = {  # label -> (strict_order, dedup), docs/analytics.md (Funnels)
    "anything": (False, False),
    "no other event (strict order)": (True, False),
    "no repeated step (deduplication)": (False, True),
}
STEPS = "fn_step_list"  # [{"id": int, "event": str, "where": str}, ...] in funnel order


def _key(sid: int, part: str) -> str:
    """Widget key of one step's ``part`` (event, where, up, down, rm), by its stable id."""
    return f"fn_s{sid}_{part}"


def _new_step(event: str, where: str = "") -> dict:
    """A step with a fresh id (ids are never reused, so widget keys never clash)."""
    ss["fn_next_id"] = ss.get("fn_next_id", 0) + 1
    return {"id": ss["fn_next_id"], "event": event, "where": where}


def _sync() -> None:
    """Copy the step widgets' current values into the step list."""
    for s in ss[STEPS]:
        s["event"] = ss.get(_key(s["id"], "event"), s["event"])
        s["where"] = ss.get(_key(s["id"], "where"), s["where"]) or ""


def _drop_widgets(sid: int) -> None:
    for part in ("event", "where"):
        ss.pop(_key(sid, part), None)


def _set_steps(pairs: list[tuple[str, str]]) -> None:
    """Replace the steps by ``(event, where)`` pairs, with fresh ids."""
    for s in ss.get(STEPS, []):
        _drop_widgets(s["id"])
    ss[STEPS] = [_new_step(ev, where) for ev, where in pairs]


def _move(sid: int, delta: int) -> None:
    """Move a step up (``delta=-1``) or down (``+1``)."""
    _sync()
    lst = ss[STEPS]
    i = next((j for j, s in enumerate(lst) if s["id"] == sid), None)
    if i is not None and 0 <= i + delta < len(lst):
        lst[i], lst[i + delta] = lst[i + delta], lst[i]


def _remove(sid: int) -> None:
    _sync()
    ss[STEPS] = [s for s in ss[STEPS] if s["id"] != sid]
    _drop_widgets(sid)


def _add() -> None:
    """Append a step: the first event not used yet (else the last step's event)."""
    _sync()
    used = {s["event"] for s in ss[STEPS]}
    fresh = [e for e in events if e not in used]
    ss[STEPS].append(_new_step(fresh[0] if fresh else ss[STEPS][-1]["event"]))


if STEPS not in ss:
    defaults = [e for e in ("product_viewed", "added_to_cart", "charged") if e in events]
    _set_steps([(e, "") for e in (defaults if len(defaults) >= 2 else events[:2])])
if ss.get("fn_segment_default") in names:
    ss["fn_segment"] = ss.pop("fn_segment_default")


WINDOW_UNITS = ("minutes", "hours", "days")


def _load_funnel() -> None:
    """Put a saved funnel's definition (a FunnelQuery's JSON) into the widgets."""
    chosen = ss.get("fn_saved")
    if not chosen:
        return
    q = saved_funnel(store, chosen)
    _set_steps([(s.event, s.where or "") for s in q.steps if s.event in events])
    try:
        n_, unit_ = durations.split(int(parse_duration(q.window) / dt.timedelta(microseconds=1)))
    except durations.DurationError:  # not a whole number of minutes: the default
        n_, unit_ = 1, "day"
    ss["fn_win_n"] = max(1, int(n_))
    ss["fn_win_u"] = f"{unit_}s"
    ss["fn_strict"] = q.strict
    ss["fn_any"] = q.order == "any"
    ss["fn_between"] = next(k for k, v in BETWEEN.items() if v == (q.strict_order, q.dedup))
    ss["fn_excl"] = [e.event for e in q.exclusions if e.event in events]
    ss["fn_hold"] = q.hold
    ss["fn_segment"] = q.segment if q.segment in names else None
    ss["fn_compare"] = [c for c in q.compare if c in names]
    if q.range is not None:
        ss["fn_range"] = (q.range.start, q.range.end)


def step_editor() -> None:
    """One row per step: event, optional where filter, move up/down, remove; then Add step."""
    st.markdown(
        "**Steps (in order)**",
        help="The events in the order users should do them; the same event may be used "
        "twice with different filters (e.g. page_viewed where page = 'pricing').",
    )
    lst = ss[STEPS]
    for i, s in enumerate(lst):
        sid = s["id"]
        ev_key, where_key = _key(sid, "event"), _key(sid, "where")
        if ss.get(ev_key, s["event"]) not in events:  # an event gone from the store
            ss[ev_key] = events[0]
        ss.setdefault(ev_key, s["event"])
        ss.setdefault(where_key, s["where"])
        c = st.columns([0.35, 3, 4, 0.45, 0.45, 0.45], vertical_alignment="center")
        c[0].markdown(f"**{i + 1}.**")
        c[1].selectbox(f"Step {i + 1} event", events, key=ev_key, label_visibility="collapsed")
        c[2].text_input(
            f"Step {i + 1} where",
            key=where_key,
            placeholder="where (optional), e.g. amount > 50",
            label_visibility="collapsed",
        )
        c[3].button(
            "",
            key=_key(sid, "up"),
            icon=":material/arrow_upward:",
            help="Move this step up",
            disabled=i == 0,
            on_click=_move,
            args=(sid, -1),
        )
        c[4].button(
            "",
            key=_key(sid, "down"),
            icon=":material/arrow_downward:",
            help="Move this step down",
            disabled=i == len(lst) - 1,
            on_click=_move,
            args=(sid, 1),
        )
        c[5].button(
            "",
            key=_key(sid, "rm"),
            icon=":material/close:",
            help="Remove this step",
            on_click=_remove,
            args=(sid,),
        )
    st.button("Add step", key="fn_add_step", icon=":material/add:", on_click=_add)
    _sync()


saved = [f["name"] for f in store.catalog.funnels()]
if saved:
    c = st.columns([3, 1], vertical_alignment="bottom")
    c[0].selectbox(
        "Saved funnels", saved, index=None, key="fn_saved", placeholder="Open a saved funnel..."
    )
    c[1].button("Open", key="fn_open", on_click=_load_funnel, icon=":material/folder_open:")

with st.container(border=True):
    step_editor()
    c = st.columns([1, 1, 2, 1])
    ss.setdefault("fn_win_n", 1)
    ss.setdefault("fn_win_u", "days")
    win_n = c[0].number_input("Window", min_value=1, key="fn_win_n")
    win_u = c[1].selectbox("Unit", list(WINDOW_UNITS), key="fn_win_u")
    last = state.as_of_day()
    first_day = dt.date.fromisoformat(info["first_event"][:10]) if info["first_event"] else last
    rng = c[2].date_input(
        "Range (entry day)",
        value=(max(first_day, last - dt.timedelta(days=29)), last),
        key="fn_range",
    )
    every = c[3].radio("Step of the trend", ["day", "week"], key="fn_every")
    c = st.columns([1, 1, 2, 2])
    strict = c[0].checkbox(
        "Strict order",
        key="fn_strict",
        help="Each step must happen strictly after the previous one.",
    )
    any_order = c[1].checkbox("Any order", key="fn_any")
    excl = c[2].multiselect(
        "Exclude chains with",
        events,
        key="fn_excl",
        help="An exclusion event between the first and last step disqualifies the chain.",
    )
    hold = c[3].selectbox(
        "Hold constant",
        [
            None,
            *[k for k in store.events_schema() if k not in ("user_id", "event", "ts", "event_id")],
        ],
        key="fn_hold",
    )
    between = st.radio(
        "Between consecutive steps",
        list(BETWEEN),
        horizontal=True,
        key="fn_between",
        help="Strict order: no other event of the user between two steps. Deduplication: "
        "no event of an earlier step (from the second) or of the next one between them.",
    )
    c = st.columns(2)
    segment = c[0].selectbox("Only members of", [None, *names], key="fn_segment")
    compare = c[1].multiselect("Compare segments side by side", names, key="fn_compare")
    if segment and compare:
        st.caption(f"Each compared segment counts only its users who are also members of "
                   f"**{segment}** (the population filter applies to every funnel).")

steps = [{"event": s["event"], "where": s["where"].strip() or None} for s in ss[STEPS]]
if len(steps) < 2:
    st.info("Pick at least two steps.")
    st.stop()
bad_filters = []
for i, s in enumerate(steps):
    try:
        if s["where"]:
            event_filter(store, s["where"])
    except SegcoreError as err:
        bad_filters.append(f"Step {i + 1} ({s['event']}) where: {friendly(err)}")
if bad_filters:
    for message in bad_filters:
        st.error(message)
    st.stop()
if not (isinstance(rng, tuple | list) and len(rng) == 2):
    st.info("Pick a start and an end date.")
    st.stop()

query = FunnelQuery(
    steps=tuple(Step(s["event"], s["where"]) for s in steps),
    window=f"{int(win_n)} {win_u}",
    range=DateRange(rng[0], rng[1]),
    strict=strict,
    order="any" if any_order else "ordered",
    exclusions=tuple(Exclusion(e) for e in excl),
    hold=hold,
    segment=segment,
    strict_order=BETWEEN[between][0],
    dedup=BETWEEN[between][1],
)

compared = dataclasses.replace(query, compare=tuple(compare or ()))
with guard("funnel"):
    res = cached.run(compared).report
    labels = [
        f"{i + 1}. {s['event']}" + (f" where {s['where']}" if s["where"] else "")
        for i, s in enumerate(steps)
    ]

    def step_rows(report_steps: list[dict], group: str | None = None) -> list[dict]:
        return [
            {
                "step": labels[i],
                "users": s["users"],
                "conversion": s["conversion_from_first"],
                "from_previous": s["conversion_from_previous"],
                **({"segment": group} if group else {}),
            }
            for i, s in enumerate(report_steps)
        ]

    bar_measure = st.radio("Bars show", ["users", "conversion"], horizontal=True,
                           key="fn_bar_measure",
                           format_func={"users": "Users", "conversion": "% of step 1"}.get)
    if compare:
        rows = [r for g, sub in res["segments"].items() for r in step_rows(sub["steps"], g)]
        st.altair_chart(charts.funnel_bars(rows, color="segment", measure=bar_measure),
                        width="stretch")
        table = pl.DataFrame(rows).select("segment", "step", "users", "conversion", "from_previous")
        st.dataframe(
            table,
            hide_index=True,
            key="fn_compare_table",
            column_config={
                "users": st.column_config.NumberColumn("users", format="localized"),
                "conversion": st.column_config.NumberColumn("from first", format="percent"),
                "from_previous": st.column_config.NumberColumn("from previous", format="percent"),
            },
        )
        main_steps = next(iter(res["segments"].values()))["steps"]
    else:
        main_steps = res["steps"]
        rows = step_rows(main_steps)
        last_step = main_steps[-1]
        c = st.columns(3)
        c[0].metric("Entered the funnel", fmt_int(main_steps[0]["users"]))
        c[1].metric("Converted", fmt_int(last_step["users"]))
        c[2].metric("Overall conversion", fmt_pct(last_step["conversion_from_first"]))
        st.altair_chart(charts.funnel_bars(rows, measure=bar_measure), width="stretch")
        st.dataframe(
            [
                {
                    "Step": labels[i],
                    "Users": fmt_int(s["users"]),
                    "From first": fmt_pct(s["conversion_from_first"]),
                    "From previous": fmt_pct(s["conversion_from_previous"]),
                    "Median time from first": fmt_seconds(s["median_seconds_from_first"]),
                }
                for i, s in enumerate(main_steps)
            ],
            hide_index=True,
            key="fn_table",
        )

    groups = res["segments"] if compare else {None: {"steps": main_steps}}
    left, right = st.columns(2)
    with left:
        st.subheader("Time to convert")
        hist = [
            {"label": b["label"], "users": b["users"], "order": j,
             **({"segment": g} if g else {})}
            for g, sub in groups.items()
            for j, b in enumerate(sub["steps"][-1].get("time_distribution", []))
        ]
        if hist:
            st.altair_chart(charts.time_to_convert(hist, color="segment" if compare else None),
                            width="stretch")
    with right:
        st.subheader("Conversion over time")
        if compare and not segment:
            fot = pl.concat([
                cached.run(FunnelTrendQuery(dataclasses.replace(query, segment=g), every)).rows
                .with_columns(pl.lit(g).alias("segment"))
                for g in compare
            ])
        else:
            fot = cached.run(FunnelTrendQuery(query, every)).rows
            if compare:
                st.caption(f"All members of {segment}: per compared segment, clear "
                           "'Only members of'.")
        fot = partial_periods(fot.with_columns(pl.col("period").cast(pl.Date)), "period",
                              rng[0], rng[1], every)
        note = week_note(rng[0], rng[1], every)
        st.altair_chart(
            charts.lines(fot, "period", "conversion", "segment" if "segment" in fot.columns
                         else None, y_title="Conversion", y_format=".0%"),
            width="stretch",
        )
        if every == "week":
            st.caption("Weekly periods start on Mondays; a first or last week cut by the "
                       "range counts only its days in the range (hollow points).")
        elif note:
            st.caption(note)

    with st.expander("Save this funnel"):
        with st.form("fn_save_form"):
            fname = st.text_input("Funnel name", key="fn_save_name")
            keep = st.form_submit_button("Save funnel")
        if keep:
            save_funnel(store, fname, compared)
            st.success(f"Saved funnel '{fname.strip()}'.")

    st.subheader("Save drop-offs as a segment")
    c = st.columns([2, 3, 1], vertical_alignment="bottom")
    after = c[0].selectbox(
        "Users who reached step but not the next",
        list(range(1, len(steps))),
        format_func=lambda i: labels[i - 1],
        key="fn_after",
    )
    # the name follows the step picked, and is free (a second save gets "(2)")
    base = f"Dropped after {steps[int(after) - 1]['event']}"
    free = next(f"{base} ({i})" if i > 1 else base for i in range(1, 1000)
                if not store.catalog.exists(f"{base} ({i})" if i > 1 else base))
    with st.form("fn_dropoff_form", border=False, enter_to_submit=False):
        fc = st.columns([5, 1], vertical_alignment="bottom")
        dname = fc[0].text_input("Segment name", key=f"fn_dropoff_name_{free}", value=free)
        save = fc[1].form_submit_button("Save")
    if save:
        with guard("save drop-offs"):
            out = save_dropoffs(store, query, int(after), dname)
            st.cache_data.clear()
            n = out.get("members", out.get("rows")) if isinstance(out, dict) else None
            ss["fn_dropoff_saved"] = (
                f"Saved static segment '{dname.strip()}'"
                + (f" with {fmt_int(n)} users." if n is not None else ".")
            )
            ss["fn_dropoff_last"] = dname.strip()
            st.rerun()
    if ss.get("fn_dropoff_saved"):
        st.success(ss.pop("fn_dropoff_saved"))
        if st.button(f"Open '{ss['fn_dropoff_last']}'", key="fn_dropoff_open",
                     icon=":material/group:"):
            state.go("segment", segment=ss["fn_dropoff_last"])
