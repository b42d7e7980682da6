"""Analytics over the store: funnels, event reports, segment trends and reachability."""

from __future__ import annotations
