"""Data: store summary and schema, imports, sample data, channel definitions."""

from __future__ import annotations

import datetime as dt
from functools import partial

import streamlit as st

from dashboard import cached, state
from dashboard.imports import IF_IMPORTED_CHOICES, NO_MAPPING, mapping_index, preview_upload
from dashboard.widgets import download, fmt_int, guard
from segcore.analytics.reach import check_channel
from segcore.ingest.preview import Preview
from segcore.ingest.readers import FORMATS

store = state.store()
ss = st.session_state
SAME = NO_MAPPING


def file_preview(files, fmt: str | None, encoding: str | None) -> Preview | None:
    """Show the first uploaded file's first rows; its preview, for the mapping fields."""
    if not files or ss.get("dt_kind") == "export":
        return None
    first = files[0]
    fmt = None if not fmt or fmt.startswith("(") or fmt not in FORMATS else fmt
    with guard("preview"):
        preview = preview_upload(first.name, first.getvalue(), fmt,
                                 None if encoding in (None, "utf-8") else encoding)
        st.caption(f"First rows of **{first.name}** ({len(preview.columns)} columns)"
                   + (f"; {len(files) - 1} more file(s) are read the same way"
                      if len(files) > 1 else ""))
        st.dataframe(preview.rows, hide_index=True, key="dt_preview")
        return preview
    return None
st.title("Data")

t_sum, t_import, t_sample, t_channels = st.tabs(["Summary", "Import", "Sample data", "Channels"])

with t_sum, guard("summary"):
    info = cached.info()
    c = st.columns(4)
    c[0].metric("Users", fmt_int(info["users"]))
    c[1].metric("Events", fmt_int(info["events"]))
    c[2].metric("Users with events", fmt_int(info["users_with_events"]))
    c[3].metric("Event files", fmt_int(info["event_files"]))
    st.caption(
        f"Store `{info['home']}` · events from {(info['first_event'] or '-')[:10]} "
        f"to {(info['last_event'] or '-')[:10]}"
    )
    left, right = st.columns(2)
    from segcore.engine.rules import type_name

    def _schema_rows(schema: dict) -> list[dict[str, str]]:
        return [
            {"column": k, "type in rules": type_name(v) or "(not usable)", "stored as": str(v)}
            for k, v in schema.items()
        ]

    left.markdown("**User attributes**")
    left.dataframe(_schema_rows(store.users_schema()), hide_index=True, key="dt_user_cols")
    right.markdown("**Event columns**")
    right.dataframe(_schema_rows(store.events_schema()), hide_index=True, key="dt_event_cols")
    st.markdown("**Event names**")
    st.dataframe(
        [{"event": e["event"], "events": e["count"]} for e in info["event_names"]],
        hide_index=True,
        key="dt_event_names",
        column_config={"events": st.column_config.NumberColumn(format="localized")},
    )

with t_import:
    files = st.file_uploader(
        "Files",
        accept_multiple_files=True,
        key="dt_files",
        type=["csv", "tsv", "txt", "parquet", "ndjson", "json", "jsonl", "gz", "zip"],
    )
    preview = file_preview(files, st.session_state.get("dt_format"),
                           st.session_state.get("dt_encoding"))
    with st.form("dt_import_form"):
        c = st.columns(4)
        kind = c[0].radio(
            "Import",
            ["events", "users", "export"],
            key="dt_kind",
            horizontal=True,
            help="export: a Segment, RudderStack, Mixpanel, Amplitude or PostHog export "
            "into events and users at once (choose the tool as the format; docs/ingest.md)",
        )
        fmt = c[1].selectbox(
            "Format",
            ["(from the file name)", "csv", "parquet", "ndjson", "segment",
             "rudderstack", "mixpanel", "amplitude", "posthog"],
            key="dt_format",
        )
        encoding = c[2].selectbox(
            "Text encoding", ["utf-8", "latin-1", "utf-16"], key="dt_encoding"
        )
        skip = c[3].checkbox(
            "Skip invalid rows", key="dt_skip",
            help="Import the valid rows and set the invalid ones aside (a download of the "
            "rejected rows with the reason); unticked, one invalid row refuses the import.",
        )
        st.markdown("Column mapping: each store column read from a column of the file "
                    "(the preview's columns; guessed from their names)")
        c = st.columns(4)
        picked = {t: c[i].selectbox(f"{t} from column", [SAME, *preview.columns],
                                    index=mapping_index(preview, t), key=f"dt_pick_{t}")
                  for i, t in enumerate(("user_id", "event", "ts"))} if preview else {}
        if not preview:
            c[0].caption("Choose a file above to map its columns.")
        const_event = c[3].text_input("... or one event name for every row", key="dt_const")
        extra = st.text_input("More mappings (target=source, comma-separated)", key="dt_map_more")
        c = st.columns([3, 1])
        derive_text = c[0].text_area(
            "Derived columns (one per line: name = expression in the rule language)",
            key="dt_derive",
            placeholder="event = CASE WHEN InvoiceNo LIKE 'C%' THEN 'cancelled' "
            "ELSE 'purchased' END\namount = Quantity * UnitPrice",
        )
        key_cols = c[1].text_input(
            "Key columns (events: make the event id, skip re-imports)",
            key="dt_key",
            placeholder="InvoiceNo,StockCode",
        )
        again = c[1].radio(
            "If a file was imported before", list(IF_IMPORTED_CHOICES), key="dt_if_imported",
            help="A file whose content (SHA-256) was imported into this store before, and "
            "whose rows have no event id, would store its events twice: stop and say so, "
            "leave it out, or import it anyway (docs/ingest.md, Re-imports).",
        )
        trim = c[1].checkbox("Trim spaces around text values", key="dt_trim")
        source_tz = c[1].text_input(
            "Time zone of timestamps without an offset",
            key="dt_source_tz",
            placeholder="UTC (e.g. Europe/London)",
            help="An IANA zone: naive times are wall-clock times there. Around a clock "
            "change an ambiguous time is its first occurrence and a skipped one moves "
            "forward by the gap; both are counted in the summary (docs/ingest.md).",
        )
        go = st.form_submit_button("Import", type="primary")
    if go:
        with guard("import"):
            from dashboard.imports import parse_derivations, parse_mapping, run_import

            mapping = parse_mapping({t: "" if v == SAME else v for t, v in picked.items()},
                                    extra)
            bar = st.progress(0.0, text="Reading...")

            def progress(fraction: float, message: str) -> None:
                bar.progress(min(max(float(fraction), 0.0), 1.0), text=message)

            try:
                summary, rejected = run_import(
                    store,
                    kind,
                    [(f.name, f.getvalue()) for f in files or []],
                    format=None if fmt.startswith("(") else fmt,
                    mapping=mapping,
                    event=const_event.strip() or None,
                    skip_invalid=skip,
                    encoding=None if encoding == "utf-8" else encoding,
                    progress=progress,
                    derive=parse_derivations(derive_text),
                    key=key_cols,
                    trim=trim,
                    source_tz=source_tz.strip() or None,
                    if_imported=IF_IMPORTED_CHOICES[again],
                )
            except Exception:
                bar.progress(1.0, text="Refused: nothing was imported")
                raise
            bar.progress(1.0, text="Done")
            st.cache_data.clear()
            st.success(summary.get("summary") or "Imported.")
            c = st.columns(4)
            c[0].metric("Rows read", fmt_int(summary.get("rows_read")))
            c[1].metric("Imported", fmt_int(summary.get("rows_imported")))
            c[2].metric("Rejected", fmt_int(summary.get("rows_rejected")))
            c[3].metric("Duplicates skipped", fmt_int(summary.get("duplicates_skipped")))
            if summary.get("identical_rows") and not summary.get("key"):
                st.warning(
                    f"{fmt_int(summary['identical_rows'])} rows are identical to rows already "
                    "stored and were imported again; give key columns to skip them."
                )
            if summary.get("imported_before") or summary.get("skipped_files"):
                st.warning(
                    ("Imported again (imported before, same content): "
                     + ", ".join(summary["imported_before"]) + ". "
                     if summary.get("imported_before") else "")
                    + ("Skipped (imported before): " + ", ".join(summary["skipped_files"])
                       if summary.get("skipped_files") else "")
                )
            if summary.get("new_columns"):
                st.info("New columns: " + ", ".join(summary["new_columns"]))
            if rejected:
                download(
                    st,
                    "Download the rejected rows (CSV)",
                    partial(bytes, rejected),
                    file_name="rejected.csv",
                    mime="text/csv",
                    key="dt_rejects_dl",
                )

with t_sample:
    st.write(
        "Replace the store's events and users with generated demo data "
        "(saved segments are kept; example segments are added when missing)."
    )
    users, days = state.sample_size()
    with st.form("dt_sample_form"):
        c = st.columns(4)
        n_users = c[0].number_input(
            "Users", min_value=10, max_value=1_000_000, value=users, step=1000, key="dt_s_users"
        )
        n_days = c[1].number_input("Days", min_value=1, max_value=3650, value=days, key="dt_s_days")
        end = c[2].date_input(
            "Last day", value=dt.datetime.now(dt.timezone.utc).date(), key="dt_s_end"
        )
        seed = c[3].number_input("Seed", min_value=0, value=42, key="dt_s_seed")
        sure = st.checkbox("Yes, replace the current events and users", key="dt_s_sure")
        regen = st.form_submit_button("Regenerate sample data")
    if regen:
        if not sure:
            st.warning("Tick the confirmation box first.")
        else:
            with guard("sample data"):
                from segcore.sample import generate
                from segcore.sample.examples import seed_examples

                bar = st.progress(0.0, text="Generating...")
                out = generate(
                    store.home,
                    users=int(n_users),
                    days=int(n_days),
                    end=end,
                    seed=int(seed),
                    progress=lambda f, m: bar.progress(min(max(float(f), 0.0), 1.0), text=m),
                )
                seed_examples(store)
                st.cache_data.clear()
                st.success(
                    f"Generated {fmt_int(out['users'])} users and "
                    f"{fmt_int(out['events'])} events in {out['seconds']:.1f} s."
                )

@st.dialog("Delete channel", on_dismiss=lambda: ss.pop("dt_ch_deleting", None))
def confirm_channel_delete(name: str) -> None:
    """Deleting a channel asks first (Reset brings the default channels back)."""
    st.warning(f"Delete channel **{name}**? Reachability stops counting it; "
               "'Reset to the default channels' brings the defaults back.")
    c = st.columns(2)
    if c[0].button("Delete", key="dt_ch_confirm_delete", type="primary"):
        store.catalog.delete_channel(name)
        ss.pop("dt_ch_deleting", None)
        st.cache_data.clear()
        st.rerun()
    if c[1].button("Cancel", key="dt_ch_cancel_delete"):
        ss.pop("dt_ch_deleting", None)
        st.rerun()


with t_channels, guard("channels"):
    st.write("A channel is an attribute-only rule: the members it is TRUE for are reachable.")
    for ch in store.catalog.channels():
        with st.container(border=True):
            c = st.columns([2, 5, 3, 1, 1], vertical_alignment="bottom")
            c[0].markdown(f"**{ch.name}**")
            rule = c[1].text_input("Rule", value=ch.rule_text, key=f"dt_ch_rule_{ch.name}")
            desc = c[2].text_input("Description", value=ch.description, key=f"dt_ch_desc_{ch.name}")
            if c[3].button("", key=f"dt_ch_save_{ch.name}", icon=":material/save:", help="Save"):
                with guard(ch.name):
                    check_channel(store, rule)
                    store.catalog.set_channel(ch.name, rule, desc)
                    st.cache_data.clear()
                    st.rerun()
            if c[4].button("", key=f"dt_ch_del_{ch.name}", icon=":material/delete:", help="Delete"):
                ss["dt_ch_deleting"] = ch.name
    if ss.get("dt_ch_deleting"):
        confirm_channel_delete(ss["dt_ch_deleting"])
    with st.form("dt_ch_new"):
        c = st.columns([2, 5, 3])
        new_name = c[0].text_input("New channel", key="dt_ch_new_name")
        new_rule = c[1].text_input(
            "Rule", key="dt_ch_new_rule", placeholder="phone IS NOT NULL AND sms_opt_in"
        )
        new_desc = c[2].text_input("Description", key="dt_ch_new_desc")
        add = st.form_submit_button("Add channel")
    if add:
        with guard("new channel"):
            check_channel(store, new_rule)
            store.catalog.set_channel(new_name, new_rule, new_desc)
            st.cache_data.clear()
            st.rerun()
    if st.button("Reset to the default channels", key="dt_ch_reset"):
        store.catalog.reset_channels()
        st.cache_data.clear()
        st.rerun()
