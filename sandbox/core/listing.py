"""List endpoints (CORE_API.md §3–§6): `page`, `limit`, `sort`, `filter[...]`, `expand`,
`include`, and the Laravel-style list envelope.

- `limit` 1..100 (default 10), `page` ≥ 1; else 400 `{"errors": {"limit"|"page": [...]}}`.
- `sort=f1,-f2`: fields from the resource's table only; applied left to right; default `id`.
- `filter[<attr>]=<op>:<value>`, op one of eq (default), oreq, like, orlike, has, orhas.
  `eq`/`like` take comma lists (any value matches). `eq` is exact but case-insensitive for
  text (**chosen**, like Pelcro's MySQL collation); `like` is a case-insensitive substring.
  `has`/`orhas` only as `filter[metadata]=has:<key>`; `filter[metadata.<key>]` compares the
  key's value as text. **chosen** combination, as SQL's `a AND b OR c`: an object matches if
  it passes every plain filter, or any of the or* filters (with no plain filters, any or*).
  When a value contains `:`, the text before the first `:` must be an operator.
- Any other query parameter (and an unknown sort field, filter attribute, operator or expand
  token) → 400 naming it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from sandbox.errors import ValidationError

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
OPERATORS = ("eq", "oreq", "like", "orlike", "has", "orhas")
PAGE_WINDOW = 3  # pages shown each side of the current one in meta.links (Laravel's onEachSide)


@dataclass(frozen=True)
class ListSpec:
    """What one collection accepts: sort fields, filter attributes (name -> type), expand tokens."""

    sort: tuple[str, ...] = ()
    filters: dict[str, type] = field(default_factory=dict)
    metadata_filters: bool = False
    expand: tuple[str, ...] = ()
    include: tuple[str, ...] = ()


LISTS = {
    "customers": ListSpec(
        ("email", "id"),
        {"email": str, "first_name": str, "last_name": str, "id": int},
        metadata_filters=True,
        expand=("addresses", "defaultSource", "organization", "subscriptions"),
    ),
    "invoices": ListSpec(
        ("created_at", "id", "status"), {"id": int, "status": str}, metadata_filters=True, expand=("subscription",)
    ),
    "plans": ListSpec(("id", "nickname")),
    "subscriptions": ListSpec(("status",), expand=("address", "plan", "coupon", "default_source", "latest_invoice")),
    "coupons": ListSpec(),
    "charges": ListSpec(),
    "refunds": ListSpec(include=("charge",)),
    "addresses": ListSpec(expand=("user",)),
}


@dataclass(frozen=True)
class ListQuery:
    page: int
    limit: int
    sort: tuple[tuple[str, bool], ...]  # (field, descending)
    filters: tuple[Callable[[dict], bool], ...]
    or_filters: tuple[Callable[[dict], bool], ...]
    expand: tuple[str, ...]
    include: tuple[str, ...]


def parse_list_query(params, spec: ListSpec, kind: str) -> ListQuery:
    """Validate a list request's query (Starlette QueryParams); 400 names every bad part."""
    errors: dict[str, list[str]] = {}
    page = _bounded_int(params.get("page"), "page", 1, None, errors)
    limit = _bounded_int(params.get("limit"), "limit", DEFAULT_LIMIT, MAX_LIMIT, errors)
    sort = _sort(params.get("sort"), spec, kind, errors)
    expand = parse_tokens(params, "expand", spec.expand, kind, errors)
    include = parse_tokens(params, "include", spec.include, kind, errors)
    plain, ored = [], []
    for key, raw in params.multi_items():
        if key.startswith("filter"):
            if not (key.startswith("filter[") and key.endswith("]") and len(key) > 8):
                errors.setdefault(key, []).append("Filters are written filter[attribute]=op:value.")
                continue
            parsed = _filter(key, key[7:-1], raw, spec, kind, errors)
            if parsed is not None:
                (ored if parsed[0] else plain).append(parsed[1])
        elif key not in ("site_id", "page", "limit", "sort", "expand", "include"):
            errors.setdefault(key, []).append(f"The {key} parameter is not supported on GET /{kind}.")
    if errors:
        raise ValidationError(errors)
    return ListQuery(page, limit, sort, tuple(plain), tuple(ored), expand, include)


def parse_tokens(params, name: str, allowed: tuple[str, ...], kind: str, errors: dict) -> tuple[str, ...]:
    """`expand=a,b` (or `include=`): each token must be one of `allowed`."""
    raw = params.get(name)
    if raw is None:
        return ()
    tokens = tuple(token.strip() for token in raw.split(",") if token.strip())
    for token in tokens:
        if token not in allowed:
            supported = ", ".join(allowed) if allowed else f"nothing on {kind}"
            errors.setdefault(name, []).append(f"Cannot {name} '{token}' on {kind}; supported: {supported}.")
    if not tokens:
        errors.setdefault(name, []).append(f"The {name} parameter needs at least one value.")
    return tokens


def _bounded_int(raw: str | None, name: str, default: int, high: int | None, errors: dict) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        errors.setdefault(name, []).append(f"The {name} must be an integer.")
        return default
    if value < 1:
        errors.setdefault(name, []).append(f"The {name} must be at least 1.")
    elif high is not None and value > high:
        errors.setdefault(name, []).append(f"The {name} may not be greater than {high}.")
    return value


def _sort(raw: str | None, spec: ListSpec, kind: str, errors: dict) -> tuple[tuple[str, bool], ...]:
    if raw is None:
        return ()
    keys = []
    for part in raw.split(","):
        name = part.strip()
        descending = name.startswith("-")
        name = name[1:] if descending else name
        if name not in spec.sort:
            supported = ", ".join(spec.sort) if spec.sort else "nothing (no sort is documented)"
            errors.setdefault("sort", []).append(
                f"Sorting {kind} by '{name}' is not supported; sortable: {supported} (prefix - for descending)."
            )
        else:
            keys.append((name, descending))
    return tuple(keys)


def _split_op(raw: str) -> tuple[str | None, str]:
    op, sep, value = raw.partition(":")
    return (op, value) if sep else (None, raw)


def _filter(key: str, name: str, raw: str, spec: ListSpec, kind: str, errors: dict):
    """(is_or, test) for one `filter[name]=raw`, or None after recording the error."""
    op, value = _split_op(raw)
    op = op if op is not None else "eq"
    if op not in OPERATORS:
        errors.setdefault(key, []).append(f"Unknown filter operator '{op}'; use one of: {', '.join(OPERATORS)}.")
        return None
    is_or = op.startswith("or")
    base = op[2:] if is_or else op
    if name == "metadata" and spec.metadata_filters:
        if base != "has":
            errors.setdefault(key, []).append("filter[metadata] takes has:<key> or orhas:<key>.")
            return None
        if not value:
            errors.setdefault(key, []).append("filter[metadata]=has: needs a metadata key.")
            return None
        return is_or, lambda obj: value in (obj.get("metadata") or {})
    if name.startswith("metadata.") and spec.metadata_filters and len(name) > 9:
        meta_key = name[9:]

        def getter(obj: dict) -> object:
            return (obj.get("metadata") or {}).get(meta_key)

        kind_of: type = str
    elif name in spec.filters:

        def getter(obj: dict) -> object:
            return obj.get(name)

        kind_of = spec.filters[name]
    else:
        supported = ", ".join([*spec.filters, *(("metadata.<key>", "metadata") if spec.metadata_filters else ())])
        errors.setdefault(key, []).append(
            f"Filtering {kind} by '{name}' is not supported; filterable: {supported or 'nothing (no filter is documented)'}."
        )
        return None
    if base == "has":
        errors.setdefault(key, []).append(f"The {op} operator only applies to filter[metadata].")
        return None
    values = [v.strip() for v in value.split(",")]
    if not value or any(v == "" for v in values):
        errors.setdefault(key, []).append(f"{key} needs a value ({op}:<value>[,<value>...]).")
        return None
    if base == "like":
        needles = [v.casefold() for v in values]
        return is_or, lambda obj: (text := _text(getter(obj))) is not None and any(n in text for n in needles)
    if kind_of is int:
        try:
            wanted = {int(v) for v in values}
        except ValueError:
            errors.setdefault(key, []).append(f"The {key} values must be integers for {op}.")
            return None
        return is_or, lambda obj: getter(obj) in wanted
    wanted_text = {v.casefold() for v in values}
    return is_or, lambda obj: _text(getter(obj)) in wanted_text


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).casefold()


def select(objects: list[dict], query: ListQuery) -> list[dict]:
    """Filtered (plain AND, or* OR) and sorted (ties keep id order, which is `objects`' order)."""
    items = list(objects)
    if query.filters or query.or_filters:

        def matches(obj: dict) -> bool:
            if query.filters and all(test(obj) for test in query.filters):
                return True
            return any(test(obj) for test in query.or_filters)

        items = [obj for obj in items if matches(obj)]
    for name, descending in reversed(query.sort):
        present = [obj for obj in items if obj.get(name) is not None]
        missing = [obj for obj in items if obj.get(name) is None]
        present.sort(key=lambda obj: _sort_key(obj[name]), reverse=descending)
        items = present + missing  # missing values sort last in both directions
    return items


def _sort_key(value):
    return value.casefold() if isinstance(value, str) else value


def envelope(data: list[dict], total: int, query: ListQuery, base_url: str, params) -> dict:
    """`{"data", "links", "meta"}` for one page (`data`, already cut) of `total` items."""
    last_page = max(1, math.ceil(total / query.limit))
    start = (query.page - 1) * query.limit
    kept = [(k, v) for k, v in params.multi_items() if k != "page"]

    def page_url(page: int | None) -> str | None:
        if page is None:
            return None
        return f"{base_url}?{urlencode([*kept, ('page', page)])}"

    prev_url = page_url(query.page - 1 if query.page > 1 else None)
    next_url = page_url(query.page + 1 if query.page < last_page else None)
    links = [{"url": prev_url, "label": "&laquo; Previous", "active": False}]
    for page in _window(query.page, last_page):
        if page is None:
            links.append({"url": None, "label": "...", "active": False})
        else:
            links.append({"url": page_url(page), "label": str(page), "active": page == query.page})
    links.append({"url": next_url, "label": "Next &raquo;", "active": False})
    return {
        "data": data,
        "links": {"first": page_url(1), "last": page_url(last_page), "prev": prev_url, "next": next_url},
        "meta": {
            "current_page": query.page,
            "from": start + 1 if data else None,
            "last_page": last_page,
            "links": links,
            "path": base_url,
            "per_page": query.limit,
            "to": start + len(data) if data else None,
            "total": total,
        },
    }


def _window(current: int, last: int) -> list[int | None]:
    """Page numbers for meta.links: all when few, else first two, last two and the current
    ±3, with None where pages are skipped (**chosen**, after Laravel's UrlWindow)."""
    if last <= 2 * PAGE_WINDOW + 6:
        return list(range(1, last + 1))
    shown = {1, 2, last - 1, last} | set(range(max(1, current - PAGE_WINDOW), min(last, current + PAGE_WINDOW) + 1))
    pages: list[int | None] = []
    for page in sorted(shown):
        if pages and page - pages[-1] > 1:  # type: ignore[operator]
            pages.append(None)
        pages.append(page)
    return pages
