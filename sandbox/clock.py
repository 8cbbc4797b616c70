"""Time as the Core API shows it: Unix seconds (integers) in every object (CORE_API.md §1)."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta


def now() -> datetime:
    return datetime.now(UTC)


def unix(moment: datetime) -> int:
    """Whole Unix seconds of `moment` (UTC)."""
    return int(moment.timestamp())


def now_unix() -> int:
    return unix(now())


def iso(moment: datetime) -> str:
    """`2026-01-31T09:15:00Z`: only for the sandbox's own admin log, never in Core objects."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def end_of_day(day: date) -> int:
    """The last second of a UTC calendar day, as Unix seconds (coupon `redeem_by`)."""
    return unix(datetime.combine(day, time(23, 59, 59), tzinfo=UTC))


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
