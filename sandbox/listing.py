"""List endpoints: `page`, `limit`, `sort`, `filter[field]=op:value`, and the list envelope.

CORE_API.md: limit defaults to 10, at most 100; `sort=field` ascending, `sort=-field`
descending (several, comma-separated, are applied left to right); filters `eq` (exact,
case-insensitive for text) and `like` (`%` any run, `_` one character, case-insensitive;
a value without `%` matches anywhere in the field). Unknown fields or operators are a 400.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable
from urllib.parse import urlencode

from sandbox.errors import ValidationError

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
OPERATORS = ("eq", "like")


@dataclass(frozen=True)
class ListSpec:
    """What one collection may be sorted and filtered by; `filters` maps field -> type."""

    sort: tuple[str, ...]
    filters: dict[str, type]


LISTS = {
    "customers": ListSpec(("id", "email", "created_at"), {"email": str, "first_name": str, "last_name": str}),
    "subscriptions": ListSpec(("id", "status", "created_at"), {"status": str, "customer_id": int}),
    "invoices": ListSpec(("id", "status", "created_at"), {"id": int, "status": str, "customer_id": int}),
    "plans": ListSpec(("id", "amount", "created_at"), {}),
    "coupons": ListSpec(("id", "code", "created_at"), {}),
    "charges": ListSpec(("id", "amount", "created_at"), {"customer_id": int, "status": str}),
}


@dataclass(frozen=True)
class ListQuery:
    page: int
    limit: int
    sort: tuple[tuple[str, bool], ...]  # (field, descending)
    filters: tuple[Callable[[dict], bool], ...]


def parse_list_query(params, spec: ListSpec) -> ListQuery:
    """Validate a list request's query (a Starlette QueryParams); 400 names each bad part."""
    errors: dict[str, list[str]] = {}
    page = _positive_int(params.get("page"), "page", 1, None, errors)
    limit = _positive_int(params.get("limit"), "limit", DEFAULT_LIMIT, MAX_LIMIT, errors)
    sort = _sort(params.get("sort"), spec, errors)
    filters = []
    for key, raw in params.multi_items():
        if key == "filter" or (key.startswith("filter") and not (key.startswith("filter[") and key.endswith("]"))):
            errors.setdefault(key, []).append("Filters are written filter[field]=op:value.")
        elif key.startswith("filter["):
            test = _filter(key, key[7:-1], raw, spec, errors)
            if test is not None:
                filters.append(test)
    if errors:
        raise ValidationError(errors)
    return ListQuery(page, limit, sort, tuple(filters))


def _positive_int(raw: str | None, name: str, default: int, high: int | None, errors: dict) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        errors.setdefault(name, []).append(f"The {name} must be an integer of at least 1.")
    elif high is not None and value > high:
        errors.setdefault(name, []).append(f"The {name} may not be greater than {high}.")
    return value


def _sort(raw: str | None, spec: ListSpec, errors: dict) -> tuple[tuple[str, bool], ...]:
    if raw is None or raw == "":
        return ()
    keys = []
    for part in raw.split(","):
        name = part.strip()
        descending = name.startswith("-")
        name = name.lstrip("-+")
        if name not in spec.sort:
            errors.setdefault("sort", []).append(
                f"Sorting by '{name}' is not supported; use one of: {', '.join(spec.sort)} (prefix - for descending)."
            )
        else:
            keys.append((name, descending))
    return tuple(keys)


def _filter(key: str, name: str, raw: str, spec: ListSpec, errors: dict):
    kind = spec.filters.get(name)
    if kind is None:
        supported = ", ".join(spec.filters) or "nothing on this collection"
        errors.setdefault(key, []).append(f"Filtering by '{name}' is not supported; use: {supported}.")
        return None
    op, sep, value = raw.partition(":")
    if not sep or op not in OPERATORS:
        errors.setdefault(key, []).append(f"Write {key}=op:value with op one of: {', '.join(OPERATORS)}.")
        return None
    if op == "like":
        pattern = _like_pattern(value)
        return lambda obj: obj.get(name) is not None and pattern.fullmatch(str(obj[name])) is not None
    if kind is int:
        try:
            wanted = int(value)
        except ValueError:
            errors.setdefault(key, []).append(f"The {key} value must be an integer for eq.")
            return None
        return lambda obj: obj.get(name) == wanted
    wanted_text = value.casefold()
    return lambda obj: isinstance(obj.get(name), str) and obj[name].casefold() == wanted_text


@lru_cache(maxsize=256)
def _like_pattern(value: str) -> re.Pattern:
    if "%" not in value:
        value = f"%{value}%"
    parts = [".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in value]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def select(objects: list[dict], query: ListQuery) -> list[dict]:
    """Filtered and sorted (ties keep id order, which is `objects`' order)."""
    items = [obj for obj in objects if all(test(obj) for test in query.filters)] if query.filters else list(objects)
    for name, descending in reversed(query.sort):
        # Missing values sort last in both directions.
        if descending:
            items.sort(key=lambda obj: _present_first(obj.get(name), False), reverse=True)
        else:
            items.sort(key=lambda obj: _present_first(obj.get(name), True))
    return items


def _present_first(value, ascending: bool) -> tuple:
    if value is None:
        return (ascending, 0)
    return (not ascending, value)


def envelope(items: list[dict], query: ListQuery, base_url: str, params) -> dict:
    """`{"data", "links", "meta"}` for one page of `items` (already filtered and sorted)."""
    total = len(items)
    last_page = max(1, math.ceil(total / query.limit))
    start = (query.page - 1) * query.limit
    data = items[start : start + query.limit]
    kept = [(k, v) for k, v in params.multi_items() if k != "page"]

    def page_url(page: int | None) -> str | None:
        if page is None:
            return None
        return f"{base_url}?{urlencode([*kept, ('page', page)])}"

    return {
        "data": data,
        "links": {
            "first": page_url(1),
            "last": page_url(last_page),
            "prev": page_url(query.page - 1 if query.page > 1 else None),
            "next": page_url(query.page + 1 if query.page < last_page else None),
        },
        "meta": {
            "current_page": query.page,
            "from": start + 1 if data else None,
            "last_page": last_page,
            "path": base_url,
            "per_page": query.limit,
            "to": start + len(data) if data else None,
            "total": total,
        },
    }
