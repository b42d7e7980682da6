"""A store's settings (``settings.json`` in its folder): the report time zone and the
first day of the week (docs/rules.md section 2), set with ``segcore config set``.

:func:`store_zone` is the one rule of which zone a request counts days in: the
request's own (``--tz``, ``tz=``, a query's ``tz``), else a zone already in force
(:func:`segcore.lang.dates.report_zone` around the call), else the store's setting, else
UTC.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from segcore.errors import UsageError
from segcore.lang.dates import (
    WEEKDAYS,
    ReportZone,
    check_week_start,
    check_zone,
    current_zone,
    zone_is_set,
)
from segcore.store.files import atomic_path

FILE = "settings.json"
KEYS = {"timezone": "UTC", "week_start": "monday"}


def settings_path(home: str | os.PathLike[str]) -> Path:
    return Path(home) / FILE


def read_settings(home: str | os.PathLike[str]) -> dict[str, Any]:
    """The store's settings, defaults filled in (a missing or broken file: defaults)."""
    out = dict(KEYS)
    try:
        data = json.loads(settings_path(home).read_text())
    except (OSError, ValueError):
        return out
    if isinstance(data, dict):
        out.update({k: data[k] for k in KEYS if isinstance(data.get(k), str)})
    return out


def set_setting(home: str | os.PathLike[str], key: str, value: str) -> dict[str, Any]:
    """Check and save one setting (``timezone`` or ``week_start``); the new settings."""
    if key not in KEYS:
        raise UsageError(f"unknown setting {key!r}; known: {', '.join(KEYS)}")
    clean = check_zone(value) if key == "timezone" else WEEKDAYS[check_week_start(value)]
    out = read_settings(home)
    out[key] = clean
    with atomic_path(settings_path(home), left="the settings are unchanged") as tmp:
        tmp.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    return out


def store_zone(home: str | os.PathLike[str] | None, tz: str | None = None) -> ReportZone:
    """The report zone of a request on the store at ``home`` (see the module docstring)."""
    if tz is None and zone_is_set():
        return current_zone()
    saved = read_settings(home) if home is not None else dict(KEYS)
    return ReportZone(tz if tz is not None else saved["timezone"], saved["week_start"])
