"""Rendering of the profile (segment vs all users) and segment-overlap results."""

from __future__ import annotations

from typing import Any

import polars as pl
import streamlit as st


def show_profile(prof: Any) -> None:
    """Show a profile result (whatever shape segcore returns, a readable view)."""
    if isinstance(prof, pl.DataFrame):
        st.dataframe(prof, hide_index=True)
    else:
        st.json(prof, expanded=False)


def show_overlap(ov: Any, name: str) -> None:
    """Show an overlap result for segment ``name`` against the others."""
    if isinstance(ov, pl.DataFrame):
        st.dataframe(ov, hide_index=True)
    else:
        st.json(ov, expanded=False)
