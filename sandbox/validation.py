"""Field-by-field validation of request bodies, with Laravel-style messages.

A `Checker` collects every problem of one body, so a client learns all of them at once;
`done()` raises the 400 `{"errors": {...}}` answer if there were any.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from sandbox.errors import ValidationError

MISSING = object()
MAX_INT = 2_147_483_647

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_CURRENCY = re.compile(r"^[a-z]{3}$")
METADATA_MAX_KEYS = 50


def label(field: str) -> str:
    return field.replace("_", " ")


class Checker:
    """Validates one JSON body; unknown fields are refused so client typos surface."""

    def __init__(self, body: dict, allowed: set[str]):
        self.body = body
        self.errors: dict[str, list[str]] = {}
        for key in body:
            if key not in allowed and key != "site_id":
                self.add(key, f"The {label(key)} field is not allowed here.")

    def add(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def done(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)

    def _get(self, field: str, required: bool, nullable: bool):
        if field not in self.body:
            if required:
                self.add(field, f"The {label(field)} field is required.")
            return MISSING
        value = self.body[field]
        if value is None and not nullable:
            self.add(field, f"The {label(field)} field is required." if required else f"The {label(field)} field may not be null.")
            return MISSING
        return value

    def string(self, field: str, *, required: bool = False, nullable: bool = True, max_len: int = 255):
        value = self._get(field, required, nullable)
        if value is MISSING or value is None:
            return value
        if not isinstance(value, str):
            self.add(field, f"The {label(field)} must be a string.")
            return MISSING
        value = value.strip()
        if not value and not required and nullable:
            return None  # "" means "no value", as in a form left blank
        if not value:
            self.add(field, f"The {label(field)} field is required.")
            return MISSING
        if len(value) > max_len:
            self.add(field, f"The {label(field)} may not be greater than {max_len} characters.")
            return MISSING
        return value

    def integer(self, field: str, *, required: bool = False, nullable: bool = False, low: int = 0, high: int = MAX_INT):
        value = self._get(field, required, nullable)
        if value is MISSING or value is None:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(field, f"The {label(field)} must be an integer.")
            return MISSING
        if value < low or value > high:
            self.add(field, f"The {label(field)} must be between {low} and {high}.")
            return MISSING
        return value

    def boolean(self, field: str):
        value = self._get(field, False, False)
        if value is not MISSING and not isinstance(value, bool):
            self.add(field, f"The {label(field)} field must be true or false.")
            return MISSING
        return value

    def email(self, field: str, *, required: bool = False):
        value = self.string(field, required=required, nullable=not required)
        if isinstance(value, str) and value and not _EMAIL.match(value):
            self.add(field, f"The {label(field)} must be a valid email address.")
            return MISSING
        return value.lower() if isinstance(value, str) else value

    def currency(self, field: str, *, required: bool = False):
        value = self._get(field, required, False)
        if value is MISSING:
            return value
        if not isinstance(value, str) or not _CURRENCY.match(value):
            self.add(field, f"The {label(field)} must be a lowercase three-letter ISO currency code.")
            return MISSING
        return value

    def choice(self, field: str, choices: tuple, *, required: bool = False):
        value = self._get(field, required, False)
        if value is not MISSING and value not in choices:
            self.add(field, f"The selected {label(field)} is invalid; use one of: {', '.join(map(str, choices))}.")
            return MISSING
        return value

    def date(self, field: str, *, nullable: bool = True):
        """A calendar date, `YYYY-MM-DD` (a full ISO timestamp is accepted and cut to its date)."""
        value = self._get(field, False, nullable)
        if value is MISSING or value is None:
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value).isoformat()
            except ValueError:
                try:
                    return datetime.fromisoformat(value.replace("Z", "+00:00")).date().isoformat()
                except ValueError:
                    pass
        self.add(field, f"The {label(field)} must be a date (YYYY-MM-DD).")
        return MISSING

    def metadata(self, field: str = "metadata"):
        """A flat object of string keys to scalar values; a null value means "remove the key"."""
        value = self._get(field, False, False)
        if value is MISSING:
            return value
        if not isinstance(value, dict):
            self.add(field, f"The {label(field)} must be an object.")
            return MISSING
        if len(value) > METADATA_MAX_KEYS:
            self.add(field, f"The {label(field)} may not have more than {METADATA_MAX_KEYS} keys.")
            return MISSING
        for key, item in value.items():
            if not key or len(key) > 40:
                self.add(field, f"The {label(field)} keys must be 1 to 40 characters.")
                return MISSING
            if item is not None and not isinstance(item, (str, int, float, bool)):
                self.add(f"{field}.{key}", f"The {label(field)}.{key} value must be a string, number, boolean or null.")
            elif isinstance(item, str) and len(item) > 500:
                self.add(f"{field}.{key}", f"The {label(field)}.{key} value may not be greater than 500 characters.")
        return value


def merge_metadata(current: dict, changes: dict) -> dict:
    """Merge `changes` into `current`; keys set to null are removed."""
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
