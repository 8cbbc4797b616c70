"""Values both servers' tools show the same way: Pelcro's Unix times as ISO 8601 UTC, and
amounts in minor units with their currency.

Time: Pelcro objects carry Unix seconds (CORE_API.md §1, "Changes" 1; the Open API's
objects are the Core ones, OPEN_API.md §3). `Timestamp` reads Unix seconds (and,
defensively, ISO 8601 strings, which older answers used) and always gives the model ISO
8601 UTC (`2026-11-30T04:15:31Z`) in `structuredContent` and text. Validated with the
`CONTRACT` context key set, only Unix integers are right (`make contract-check`).

Money: integers in minor units with a lowercase ISO 4217 code (`money` renders them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, ValidationInfo, WithJsonSchema

CONTRACT = "contract"  # validation-context key: validate as the contract says, not leniently


def to_datetime(value: Any, info: ValidationInfo) -> Any:
    """Unix seconds (int, or float) → aware UTC datetime; ISO strings too unless validating
    against the contract (where only Unix integers are right)."""
    strict = bool(info.context and info.context.get(CONTRACT))
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, bool):
        raise ValueError("a timestamp must be Unix seconds, not a boolean")
    if isinstance(value, int) or (isinstance(value, float) and not strict):
        return _from_unix(value)
    if strict:
        raise ValueError(f"the contract says Unix seconds (an integer), got {type(value).__name__} {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return _from_unix(int(text))
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"not Unix seconds or an ISO 8601 time: {value!r}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"not a timestamp: {value!r}")


# Unix seconds of 0001-01-01 and 9999-12-31T23:59:59Z: what a datetime can hold.
UNIX_MIN, UNIX_MAX = -62_135_596_800, 253_402_300_799


def _from_unix(seconds: float) -> datetime:
    if not UNIX_MIN <= seconds <= UNIX_MAX:
        raise ValueError(f"{seconds!r} is not a Unix time a calendar can show (years 1 to 9999)")
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):  # NaN, or beyond the platform's time_t
        raise ValueError(f"{seconds!r} is not a usable Unix time") from None


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 UTC with a Z, to the second: what the model reads."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


Timestamp = Annotated[
    datetime,
    BeforeValidator(to_datetime),
    PlainSerializer(iso, return_type=str),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "description": "ISO 8601 UTC time (Pelcro sends Unix seconds)."}
    ),
]


# --- Money -------------------------------------------------------------------------------

# ISO 4217 currencies without a minor unit: their amounts are already whole units.
ZERO_DECIMAL = frozenset(
    ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"]
)


def money(minor_units: int | None, currency: str | None) -> str:
    """An amount in minor units as people read it, e.g. 1999 usd -> "19.99 USD"."""
    if minor_units is None:
        return "?"
    code = (currency or "").lower()
    amount = f"{minor_units:,}" if code in ZERO_DECIMAL else f"{minor_units / 100:,.2f}"
    return f"{amount} {code.upper()}".strip()
