"""Segment builder: visual rows and rule text kept in sync, live preview, save."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import builder as bm
from dashboard import cached, state
from dashboard.widgets import fmt_int, fmt_pct, friendly, guard, rule_error
from segcore.engine.rules import schema_of, to_tree
from segcore.errors import ConflictError, RuleError, SegcoreError
from segcore.lang.printer import quote_ident, quote_string
from segcore.query import ReachQuery, Target, ValuesQuery

store = state.store()
as_of = state.as_of()
ss = st.session_state
schema = schema_of(store)


# ---------------------------------------------------------------------- state
def _with_ids(model: dict[str, Any]) -> dict[str, Any]:
    for g in model["groups"]:
        g["id"] = _next_id()
        for r in g["rows"]:
            r["id"] = _next_id()
    return model


def _next_id() -> int:
    ss["b_next_id"] = ss.get("b_next_id", 0) + 1
    return ss["b_next_id"]


def _load_text(text: str) -> None:
    """Set the rule text and, when the builder can show it, the visual model."""
    ss["b_text"] = text
    ss["b_error"] = None
    try:
        tree = to_tree(store, text) if text.strip() else None
    except RuleError as err:
        ss["b_error"] = err
        return
    model = bm.from_tree(tree)
    if model is None:
        ss["b_advanced"] = True
        return
    ss["b_advanced"] = False
    ss["b_model"] = _with_ids(model)
    ss["b_built"] = bm.to_rule_text(model, schema)


def _init() -> None:
    for key in [k for k in ss if str(k).startswith("b_") and k != "b_next_id"]:
        del ss[key]
    ss["b_model"] = _with_ids(bm.empty_model())
    ss["b_built"] = ""
    ss["b_advanced"] = False
    ss["b_text"] = ""
    ss["b_version"] = None
    ss["b_kind"] = "dynamic"
    ss["b_name"] = ""
    ss["b_desc"] = ""
    name = ss.get("edit_segment")
    if name:
        seg = store.catalog.get(name)
        ss["b_version"] = seg.version
        ss["b_name"] = seg.name
        ss["b_desc"] = seg.description
        ss["b_kind"] = seg.kind
        if not seg.is_static:
            _load_text(seg.rule_text or "")
    elif st.query_params.get("rule"):
        _load_text(st.query_params["rule"])
    ss["b_loaded_for"] = name


if (
    ss.pop("b_reset", False)
    or "b_model" not in ss
    or ss.get("b_loaded_for") != ss.get("edit_segment")
):
    _init()


def _on_text() -> None:
    _load_text(ss.get("b_text", ""))


def _remove(gid: int, rid: int) -> None:
    for g in ss["b_model"]["groups"]:
        if g["id"] == gid:
            g["rows"] = [r for r in g["rows"] if r["id"] != rid]
    groups = ss["b_model"]["groups"]
    ss["b_model"]["groups"] = [g for g in groups if g["rows"]] or groups[:1]


def _add(gid: int) -> None:
    kind = ss.get(f"b_add_kind_{gid}", "attribute")
    for g in ss["b_model"]["groups"]:
        if g["id"] == gid:
            row = bm.new_row(kind, schema)
            row["id"] = _next_id()
            g["rows"].append(row)


def _add_group() -> None:
    ss["b_model"]["groups"].append({"op": "and", "rows": [], "id": _next_id()})


def _to_builder() -> None:
    ss["b_advanced"] = False
    ss["b_model"] = _with_ids(bm.empty_model())
    ss["b_built"] = ""


# ---------------------------------------------------------------------- rows
EVENTS = sorted(schema.event_names or []) + ["*"]
USER_COLS = [c for c in schema.users if c != "user_id"]
NUM_PROPS = [c for c, t in schema.events.items() if t in ("int", "float")]
SPAN_UNITS = list(bm.UNITS)


def _pick(col, label: str, options: list, value: Any, key: str, **kw) -> Any:
    opts = list(options)
    if value not in opts and value is not None:
        opts.append(value)
    return col.selectbox(
        label, opts, index=opts.index(value) if value in opts else 0, key=key, **kw
    )


def _span(cols, label: str, value: list, key: str) -> list:
    n = cols[0].number_input(
        label, min_value=0, value=int(value[0]), step=1, key=f"{key}_n", help="0 = all time"
    )
    unit = _pick(cols[1], "unit", SPAN_UNITS, value[1], f"{key}_u", label_visibility="hidden")
    return [int(n), unit]


SUGGESTED_TYPES = ("string", "list")
SUGGESTED_OPS = ("=", "!=", "in", "not in", "contains", "starts with")


def _take(row_id: int, k: str, op: str) -> None:
    """Put the suggestion picked into the value box (added to the list for in / not in)."""
    picked = ss.get(f"{k}_sugg")
    if picked is None:
        return
    current = str(ss.get(f"{k}_val") or "").strip()
    many = op in ("in", "not in") and current
    ss[f"{k}_val"] = f"{current}, {picked}" if many else picked
    ss[f"{k}_sugg"] = None


def _suggestions(col, row: dict[str, Any], k: str) -> None:
    """The attribute's most frequent values with their user counts, to pick from."""
    with guard("suggestions"):
        top = cached.run(ValuesQuery(row["column"], top=15)).rows
        counts = dict(zip(top["value"].to_list(), top["count"].to_list(), strict=True))
        col.selectbox(
            "Top values", list(counts), index=None, key=f"{k}_sugg",
            format_func=lambda v: f"{v} ({counts[v]:,} users)",
            placeholder="Suggestions...", on_change=_take, args=(row["id"], k, row["op"]),
            help=f"The most frequent values of {row['column']} (users with each)",
        )


STR_PROPS = [c for c, t in schema.events.items()
             if t in SUGGESTED_TYPES and c not in ("user_id", "event", "event_id")]


def _take_where(k: str) -> None:
    """Add ``property = 'value'`` for the suggestion picked to the row's "Only events where"."""
    prop, picked = ss.get(f"{k}_wprop"), ss.get(f"{k}_wsugg")
    if picked is None or not prop:
        return
    cond = f"{quote_ident(prop)} = {quote_string(picked)}"
    current = str(ss.get(f"{k}_where") or "").strip()
    ss[f"{k}_where"] = f"{current} AND {cond}" if current else cond
    ss[f"{k}_wsugg"] = None


def _event_suggestions(cols, row: dict[str, Any], k: str) -> None:
    """A property of the row's event and its most frequent values with their event counts,
    to add to "Only events where"."""
    if not STR_PROPS or row["event"] == "*":
        return
    first = next((i for i, c in enumerate(STR_PROPS)  # ok-loop: a few text columns, cached
                  if cached.run(ValuesQuery(c, event=row["event"], top=1)).rows.height), 0)
    prop = cols[0].selectbox("Values of", STR_PROPS, index=first, key=f"{k}_wprop",
                             help=f"A text property of {row['event']!r} events (the first "
                             "one they have values of, to start with)")
    with guard("suggestions"):
        top = cached.run(ValuesQuery(prop, event=row["event"], top=15)).rows
        counts = dict(zip(top["value"].to_list(), top["count"].to_list(), strict=True))
        cols[1].selectbox(
            "Top values", list(counts), index=None, key=f"{k}_wsugg",
            format_func=lambda v: f"{v} ({counts[v]:,} events)",
            placeholder="Suggestions..." if counts else "(no values)", on_change=_take_where,
            args=(k,),
            help=f"The most frequent values of {prop} in {row['event']!r} events (events "
            "with each); picking one adds it to 'Only events where'",
        )


def _row(row: dict[str, Any], gid: int) -> None:
    k = f"b_{row['id']}"
    kind = row["kind"]
    c = st.columns([3, 3, 3, 2, 2, 1], vertical_alignment="bottom")
    if kind == "attribute":
        row["column"] = _pick(c[0], "Attribute", USER_COLS, row["column"], f"{k}_col")
        row["op"] = _pick(c[1], "Condition", bm.ATTR_OPS, row["op"], f"{k}_op")
        if row["op"] not in bm.NO_VALUE_OPS:
            hint = {"in": "a, b, c", "not in": "a, b, c", "in the last": "14 days"}.get(row["op"])
            row["value"] = c[2].text_input(
                "Value", value=str(row.get("value", "")), key=f"{k}_val", placeholder=hint
            )
            if schema.users.get(row["column"]) in SUGGESTED_TYPES and row["op"] in SUGGESTED_OPS:
                _suggestions(c[3], row, k)
        c[4].caption(schema.users.get(row["column"], ""))
    elif kind == "event":
        did = _pick(
            c[0], "User", ["did", "did not"], "did" if row["did"] else "did not", f"{k}_did"
        )
        row["did"] = did == "did"
        row["event"] = _pick(c[1], "Event", EVENTS, row["event"], f"{k}_ev")
        measures = {"any": "at least once", "count": "number of times", "sum": "sum of"}
        m = _pick(
            c[2], "Measure", list(measures.values()), measures[row["measure"]], f"{k}_measure"
        )
        row["measure"] = next(key for key, v in measures.items() if v == m)
        if row["measure"] != "any":
            c2 = st.columns([3, 3, 3, 2, 2, 1], vertical_alignment="bottom")
            if row["measure"] == "sum":
                row["prop"] = _pick(
                    c2[0],
                    "Property",
                    NUM_PROPS,
                    row.get("prop") or (NUM_PROPS[0] if NUM_PROPS else None),
                    f"{k}_prop",
                )
            row["cmp"] = _pick(c2[1], "Compare", bm.CMP_OPS, row.get("cmp", ">="), f"{k}_cmp")
            if row["measure"] == "count":
                row["amount"] = c2[2].number_input(
                    "Times",
                    min_value=0,
                    step=1,
                    value=int(row.get("amount") or 0),
                    key=f"{k}_times",
                )
            else:
                row["amount"] = c2[2].number_input(
                    "Amount", value=float(row.get("amount") or 0), key=f"{k}_amount"
                )
        c3 = st.columns([3, 3, 3, 2, 2, 1], vertical_alignment="bottom")
        row["within"] = _span(c3[0:2], "In the last", row["within"], f"{k}_within")
        row["where"] = c3[2].text_input(
            "Only events where",
            value=row.get("where", ""),
            key=f"{k}_where",
            placeholder="amount > 100",
        )
        _event_suggestions(c3[3:5], row, k)
    elif kind == "first":
        c[0].markdown("did for the **first time**")
        row["event"] = _pick(c[1], "Event", EVENTS, row["event"], f"{k}_ev")
        row["within"] = _span(c[2:4], "In the last", row["within"], f"{k}_within")
    elif kind == "sequence":
        row["first"] = _pick(c[0], "Did", EVENTS, row["first"], f"{k}_first")
        then = _pick(
            c[1],
            "then",
            ["then did", "then did not do"],
            "then did not do" if row["then_not"] else "then did",
            f"{k}_thennot",
        )
        row["then_not"] = then != "then did"
        row["then"] = _pick(c[2], "Event", EVENTS, row["then"], f"{k}_then")
        c3 = st.columns([3, 3, 3, 2, 2, 1], vertical_alignment="bottom")
        row["gap"] = _span(c3[0:2], "Within (gap)", row["gap"], f"{k}_gap")
        row["within"] = _span(c3[2:4], "First event in the last", row["within"], f"{k}_within")
    elif kind == "segment":
        member = _pick(
            c[0],
            "User is",
            ["in segment", "not in segment"],
            "in segment" if row["member"] else "not in segment",
            f"{k}_in",
        )
        row["member"] = member == "in segment"
        names = sorted(schema.segments or [])
        row["name"] = _pick(c[1], "Segment", names, row["name"] or None, f"{k}_seg")
    c[5].button(
        "",
        key=f"{k}_rm",
        icon=":material/close:",
        help="Remove this condition",
        on_click=_remove,
        args=(gid, row["id"]),
    )


def visual_builder() -> None:
    model = ss["b_model"]
    if len(model["groups"]) > 1:
        model["op"] = st.radio(
            "Groups combined with",
            ["and", "or"],
            index=["and", "or"].index(model["op"]),
            horizontal=True,
            key=f"b_top_op_{model['groups'][0]['id']}",
        )
    for g in model["groups"]:
        with st.container(border=True):
            if len(g["rows"]) > 1:
                g["op"] = st.radio(
                    "Match",
                    ["and", "or"],
                    index=["and", "or"].index(g["op"]),
                    horizontal=True,
                    key=f"b_gop_{g['id']}",
                    format_func=lambda o: "all (AND)" if o == "and" else "any (OR)",
                )
            for row in g["rows"]:
                _row(row, g["id"])
            a = st.columns([3, 2, 7], vertical_alignment="bottom")
            a[0].selectbox(
                "Add a condition",
                list(bm.KINDS),
                format_func=bm.KINDS.get,
                key=f"b_add_kind_{g['id']}",
            )
            a[1].button(
                "Add", key=f"b_add_{g['id']}", icon=":material/add:", on_click=_add, args=(g["id"],)
            )
    st.button("Add a group", key="b_add_group", on_click=_add_group, icon=":material/add_box:")
    try:
        text = bm.to_rule_text(model, schema)
    except SegcoreError as err:
        st.warning(f"Incomplete condition: {friendly(err)}")
        return
    if text != ss.get("b_built"):
        ss["b_built"] = text
        ss["b_text"] = text
        ss["b_error"] = None


def preview() -> None:
    text = ss.get("b_text", "")
    if not text.strip():
        st.info("Add a condition or type a rule to see how many users match.")
        return
    try:
        size = cached.size(Target(rule=text), as_of)
    except RuleError as err:
        rule_error(text, err)
        return
    c = st.columns(3)
    c[0].metric("Matching users", fmt_int(size.members))
    c[1].metric("Share of all users", fmt_pct(size.share_of_all if size.all_users else None))
    with guard("reachability"):
        r = cached.run(ReachQuery(Target(rule=text), as_of))
        c[2].metric("Reachable (any channel)", fmt_int(r["any"]))
        st.caption(
            " · ".join(
                f"{name}: {fmt_int(v['count'])} ({fmt_pct(v['share'])})"
                for name, v in r["channels"].items()
            )
        )


@st.fragment
def editor() -> None:
    if "b_text" not in ss:  # back from another page: Streamlit dropped the widget's value
        ss["b_text"] = ss.get("b_rule", "")
    if ss.get("b_advanced"):
        st.info("Advanced rule: the visual builder cannot show it, edit it as text below.")
        st.button("Start over in the visual builder", key="b_to_builder", on_click=_to_builder)
    else:
        with guard("builder"):
            visual_builder()
    st.text_area(
        "Rule",
        key="b_text",
        height=110,
        on_change=_on_text,
        help="The rule language of docs/rules.md; the builder follows your edits.",
    )
    ss["b_rule"] = ss["b_text"]
    err = ss.get("b_error")
    if isinstance(err, RuleError):
        rule_error(ss.get("b_text", ""), err)
    else:
        with guard("preview"):
            preview()


# ---------------------------------------------------------------------- page
editing = ss.get("edit_segment")
st.title(f"Edit segment: {editing}" if editing else "New segment")
if editing:

    def _new() -> None:
        ss.pop("edit_segment", None)
        ss["b_reset"] = True

    st.button("Start a new segment instead", key="b_new", icon=":material/add:", on_click=_new)
msg = ss.pop("builder_message", None)
if msg:
    st.success(msg)
    st.page_link(state.PAGES["segment"], label="Open the segment page", icon=":material/group:")


def _saved(name: str, message: str) -> None:
    st.cache_data.clear()
    ss["edit_segment"] = name
    ss["segment"] = name
    ss["b_reset"] = True
    ss["builder_message"] = message
    st.rerun()


if ss.get("b_kind") == "static":
    st.caption("A static segment: its members are a list of user ids.")
STATIC_TAB = "List of user ids (static)"
tab_rule, tab_static = st.tabs(
    ["Rule", STATIC_TAB], default=STATIC_TAB if ss.get("b_kind") == "static" else "Rule"
)
with tab_rule:
    if ss.get("b_kind") == "static":
        st.info("This segment is static: replace its ids in the other tab.")
    else:
        editor()
        # Enter in Name or Description does not save: only the button does
        with st.form("b_save_form", border=True, enter_to_submit=False):
            st.text_input("Name", key="b_name")
            st.text_input("Description", key="b_desc")
            save = st.form_submit_button("Save segment", type="primary")
        if save:
            name, desc, text = ss["b_name"].strip(), ss["b_desc"], ss.get("b_text", "")
            from segcore.segments import create_segment, edit_segment

            if not name:
                st.error("Give the segment a name.")
            elif not text.strip():
                st.error("The rule is empty.")
            else:
                try:
                    if editing:
                        edit_segment(
                            store,
                            editing,
                            rule=text,
                            description=desc,
                            new_name=name if name != editing else None,
                            expect_version=ss.get("b_version"),
                        )
                        _saved(name, f"Saved changes to '{name}'.")
                    else:
                        create_segment(store, name, text, description=desc)
                        _saved(name, f"Saved segment '{name}'.")
                except ConflictError as err:
                    ss["b_conflict"] = f"Not saved: {err}"
                except RuleError as err:
                    rule_error(text, err)
                except SegcoreError as err:
                    st.error(friendly(err))

    if ss.get("b_conflict"):
        st.error(ss["b_conflict"])
        st.button(
            "Reload the latest version (your changes are lost)",
            key="b_reload",
            on_click=lambda: ss.update(b_reset=True),
        )

with tab_static:
    with st.form("b_static_form", enter_to_submit=False):
        st.text_input("Name", key="b_static_name", value=editing or "")
        st.text_input("Description", key="b_static_desc")
        up = st.file_uploader(
            "CSV file with a user_id column (or one id per line)",
            type=["csv", "txt"],
            key="b_static_file",
        )
        pasted = st.text_area(
            "... or paste ids (separated by commas, semicolons or line breaks)",
            key="b_static_text",
        )
        go = st.form_submit_button("Save list", type="primary")
    if go:
        with guard("upload"):
            from segcore.segments import create_segment, known_ids, parse_pasted_ids

            name = ss["b_static_name"].strip()
            blanks = 0
            if up is not None:
                source: bytes | list[str] = up.getvalue()
            else:
                source, parsed = parse_pasted_ids(pasted)
                blanks = parsed["blanks"]
                if parsed["header"]:  # a pasted CSV: its duplicates count as the file's would
                    source = pasted.encode()
            if not name:
                st.error("Give the segment a name.")
            elif not source:
                st.error("Upload a file or paste some ids.")
            else:
                if store.catalog.exists(name):
                    seg = store.catalog.get(name)
                    report = store.catalog.upload_static(
                        name,
                        source,
                        known_ids=known_ids(store),
                        description=ss["b_static_desc"],
                        expect_version=seg.version,
                    )
                else:
                    _, report = create_segment(
                        store, name, ids=source, description=ss["b_static_desc"]
                    )
                st.cache_data.clear()
                if isinstance(source, list):  # the duplicates were counted while parsing
                    report = {**report, "rows": parsed["rows"],
                              "duplicates": parsed["duplicates"],
                              "duplicate_examples": parsed["duplicate_examples"]}
                now = cached.segment_count(report["segment"], as_of)
                st.success(
                    f"Saved '{report['segment']}': {fmt_int(report['members'])} distinct ids "
                    f"stored from {fmt_int(report['rows'])} given; {fmt_int(now)} of them are "
                    f"members as of {as_of}"
                    + (f" (the {fmt_int(report['unknown'])} unknown ids count once they "
                       "appear in the data)." if report.get("unknown") else ".")
                )
                c = st.columns(3)
                c[0].metric("Duplicate ids", fmt_int(report.get("duplicates", 0)))
                c[1].metric("Unknown ids", fmt_int(report.get("unknown", 0)))
                c[2].metric("Blank entries skipped", fmt_int(blanks))
                if report.get("duplicate_examples"):
                    st.caption(
                        "Duplicates, e.g.: " + ", ".join(map(str, report["duplicate_examples"]))
                    )
                if report.get("unknown_examples"):
                    st.caption(
                        "Unknown (kept, they may arrive with a later import), e.g.: "
                        + ", ".join(map(str, report["unknown_examples"]))
                    )
