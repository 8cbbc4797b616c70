"""Field-by-field validation of request bodies, with Laravel-style messages.

A `Checker` collects every problem of one body, so a client learns all of them at once;
`done()` raises the 400 `{"errors": {...}}` answer if there were any.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from sandbox.errors import NotFound, ValidationError
from sandbox.store import SINGULAR

MISSING = object()
MAX_INT = 2_147_483_647

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
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
            self.add(
                field,
                f"The {label(field)} field is required." if required else f"The {label(field)} field may not be null.",
            )
            return MISSING
        return value

    def raw(self, field: str, *, required: bool = False):
        """The value as sent (not stripped: passwords), MISSING when absent or null."""
        return self._get(field, required, False)

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
        """A three-letter ISO 4217 code, returned lowercase (Core objects show it lowercase)."""
        value = self._get(field, required, False)
        if value is MISSING:
            return value
        if not isinstance(value, str) or not _CURRENCY.match(value):
            self.add(field, f"The {label(field)} must be a three-letter ISO currency code.")
            return MISSING
        return value.lower()

    def unix(self, field: str, *, nullable: bool = True):
        """A Unix timestamp in seconds (integer, ≥ 0)."""
        value = self._get(field, False, nullable)
        if value is MISSING or value is None:
            return value
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.add(field, f"The {label(field)} must be a Unix timestamp in seconds (integer).")
            return MISSING
        return value

    def phone(self, field: str = "phone"):
        """A phone number: non-digits are stripped and 5 to 20 digits must remain [cus-new]."""
        value = self.string(field, max_len=255)
        if not isinstance(value, str):
            return value
        digits = "".join(ch for ch in value if ch.isdigit())
        if not 5 <= len(digits) <= 20:
            self.add(field, f"The {label(field)} must have between 5 and 20 digits.")
            return MISSING
        return digits

    def reference(self, id_field: str, alias_field: str, *, required: bool):
        """An object named by `id_field` (int) and/or its `alias_field` (`*_old_provider_id`
        string); returns (id, alias), each MISSING/None when absent. Look it up with `lookup()`."""
        obj_id = self.integer(id_field, low=1, nullable=not required)
        alias = self.string(alias_field, max_len=191)
        absent = (MISSING, None)
        if (
            required
            and obj_id in absent
            and alias in absent
            and id_field not in self.errors
            and alias_field not in self.errors
        ):
            self.errors.pop(id_field, None)
            self.add(id_field, f"The {label(id_field)} field is required when {label(alias_field)} is not present.")
        return obj_id, alias

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


def lookup(store, site_id: int, kind: str, ref: tuple, id_field: str, alias_field: str):
    """The live object a `Checker.reference()` names, or None when neither was given.

    Missing (or another site's) → 404; id and alias naming different objects → 400 [sub-new].
    """
    obj_id, alias = ref
    by_id = store.get(kind, site_id, obj_id) if obj_id not in (MISSING, None) else None
    by_alias = None
    if alias not in (MISSING, None):
        by_alias = store.by_old_provider_id(kind, site_id, alias)
        if by_alias is None:
            raise NotFound(f"{SINGULAR[kind]} with old provider id '{alias}' not found.")
    if by_id is not None and by_alias is not None and by_id is not by_alias:
        raise ValidationError(
            {
                alias_field: [
                    f"The {label(alias_field)} must point at the same {SINGULAR[kind].lower()} as {label(id_field)}."
                ]
            }
        )
    return by_id or by_alias
