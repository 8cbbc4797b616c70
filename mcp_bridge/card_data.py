"""Raw payment card data in tool arguments: found, refused by the Open server, and never
stored in an audit row (issue 14: "raw card data is never accepted"; PCI DSS: a system that
is not built to hold card numbers must not store or pass them on).

A card number (PAN) is 13 to 19 digits, written together or in groups split by spaces or
dashes (groups of 3 to 8 digits, as cards are printed (4-4-4-4, 4-6-5) or typed; dates and phone
numbers have shorter groups), that pass the Luhn check (ISO/IEC 7812-1 Annex B) and start as a card brand's
numbers do (2-6: Mastercard 2/5, Amex and Diners 3, Visa 4, Discover and UnionPay 6; a
number starting 0, 1, 7, 8 or 9 is not a payment card). Digits right after a `+` are a
phone number, not a card. Argument names that only card data has (`card_number`, `cvc`,
…) count too, at the top level (where a tool of ours would take them).
"""

from __future__ import annotations

import re
from typing import Any

# A run of digit groups split by single spaces or dashes (not after a +): a card number is
# some consecutive groups of it, so one followed by an expiry ("4111 1111 1111 1111 12") is
# still found.
_CANDIDATE = re.compile(r"(?<![\d+])\d+(?:[ -]\d+)*")
_MAX_DEPTH = 6

# Top-level argument names that carry card data (a saved card is named by its id instead).
CARD_ARGUMENTS = frozenset(
    {
        "card",
        "card_number",
        "cardnumber",
        "number",
        "pan",
        "cvc",
        "cvv",
        "cvv2",
        "exp_month",
        "exp_year",
        "expiry",
        "token",
        "gateway_token",
        "payment_gateway",
    }
)

# What the Open server answers (no period: callers end the sentence).
CARD_DATA_REFUSED = (
    "Card details are never accepted here: the subscriber adds a card on the publication's own website "
    "(get_site gives the address of the publication's website), then pays with it by its "
    "payment_method_id (list_my_payment_methods)"
)
# The same as a sentence of its own: where a tool needs a card the subscriber has not saved.
ADD_A_CARD = CARD_DATA_REFUSED + "."


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _is_card_number(candidate: str) -> bool:
    """Whether consecutive digit groups of `candidate` form a card number."""
    groups = re.split(r"[ -]", candidate)
    for start in range(len(groups)):
        digits = ""
        for count, group in enumerate(groups[start:], 1):
            digits += group
            if len(digits) > 19 or (count > 1 and not all(3 <= len(g) <= 8 for g in groups[start : start + count])):
                break
            if len(digits) >= 13 and digits[0] in "23456" and _luhn(digits):
                return True
    return False


def has_card_number(text: str) -> bool:
    """Whether `text` contains a payment card number (module docstring)."""
    return any(_is_card_number(match.group()) for match in _CANDIDATE.finditer(text))


def mask_card_numbers(text: str) -> str:
    """`text` with each card number in it replaced by `[card number]`."""
    return _CANDIDATE.sub(lambda m: "[card number]" if _is_card_number(m.group()) else m.group(), text)


def carries_card_data(value: Any, *, top: bool = True, depth: int = 0) -> bool:
    """Whether tool arguments `value` (JSON: dicts, lists, strings, numbers) hold card data:
    a card number in any string or key at any depth, or (at the top) an argument name that
    only card data has."""
    if depth > _MAX_DEPTH:
        return False
    if isinstance(value, str):
        return has_card_number(value)
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return has_card_number(str(value))
    if isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            if (top and name.lower() in CARD_ARGUMENTS) or has_card_number(name):
                return True
            if carries_card_data(item, top=False, depth=depth + 1):
                return True
        return False
    if isinstance(value, (list, tuple)):
        return any(carries_card_data(item, top=False, depth=depth + 1) for item in value)
    return False
