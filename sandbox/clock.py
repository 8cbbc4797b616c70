"""Time as the Core API shows it: ISO 8601 UTC strings with a trailing Z."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """`2026-01-31T09:15:00Z` (second precision, so equal instants compare equal as text)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def add_interval(moment: datetime, interval: str, count: int = 1) -> datetime:
    """`moment` plus `count` billing intervals (day, week, month, year), month ends clamped."""
    if interval == "day":
        return moment + timedelta(days=count)
    if interval == "week":
        return moment + timedelta(weeks=count)
    months = count * (12 if interval == "year" else 1)
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)
