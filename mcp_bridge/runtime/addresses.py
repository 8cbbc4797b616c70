"""What both servers' address tools share: Pelcro's address fields and rules (CORE_API.md
§8.9; the Open API's addresses are the Core ones, OPEN_API.md §5.6).

`AddressText` is the optional text of an address write, with Pelcro's lengths; a server's
input model adds its own (the Core tools' site, customer, types and department, salutation,
title; the Open tools' fixed type). The rules: a US, CA or AU address needs a state
(`needs_state`, and `require_state` for an input model's validator); a US or CA address
needs a postal code when taxes are validated (`needs_postal_code`: the Core account's
AvaTax setting, the Open site's `taxes_enabled`).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mcp_bridge.runtime.schemas import ToolInput

STATE_REQUIRED = frozenset({"US", "CA", "AU"})
POSTAL_REQUIRED_WITH_TAX = frozenset({"US", "CA"})
COUNTRY_CODE = r"^[A-Z]{2}$"  # ISO 3166-1 alpha-2, upper case


def text(max_length: int = 255, description: str | None = None) -> Any:
    """An optional text field of 1 to `max_length` characters."""
    return Field(None, min_length=1, max_length=max_length, description=description)


class AddressText(ToolInput):
    """The optional fields both servers' address writes take (CORE_API.md §8.9 lengths)."""

    first_name: str | None = text()
    last_name: str | None = text()
    company: str | None = text()
    line2: str | None = text()
    city: str | None = text()
    state: str | None = text(description="State or province; required for US, CA and AU addresses.")
    postal_code: str | None = text(45)
    phone: str | None = text(40)
    is_default: bool | None = Field(None, description="Make it the default address of its type.")


def needs_state(country: str | None, state: str | None) -> bool:
    """Whether an address in `country` without a state breaks the state rule."""
    return country in STATE_REQUIRED and not state


def require_state(country: str | None, state: str | None) -> None:
    """The state rule as an input model's validator applies it (a `ValueError`, which the
    registry answers as invalid_arguments)."""
    if needs_state(country, state):
        raise ValueError(f"a {country} address needs a state")


def needs_postal_code(country: str | None, postal_code: str | None) -> bool:
    """Whether an address in `country` without a postal code breaks the postal-code rule
    where taxes are validated."""
    return country in POSTAL_REQUIRED_WITH_TAX and not postal_code
