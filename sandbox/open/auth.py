"""Register, login, logout, refresh and passwordless login (OPEN_API.md §2, §5.1).

- register: `email` (valid, unique per account) and `password` required; with the site's
  `strong_password` (on by default) the password has 8–30 characters with a digit, a symbol,
  a lower- and an upper-case letter, else at least 6; optional profile fields (customer.py).
  **chosen:** 200 with the customer and its token; a duplicate email → 400 validation.
  `security_token` is accepted and ignored (the sandbox runs no risk assessment).
- login: `password` and `email` or `username` (case-insensitive, this site's customers).
  Wrong password, unknown email or username → the same 404 `Invalid credentials! Please try
  again.`; after `login_max_attempts` (10) failures for the same site and identifier within
  `login_lockout_window` (300 s) every login for it answers 429 `Too many login attempts...`
  (with Retry-After) until the oldest failure leaves the window; a success clears the count.
  With the site's `single_session` on, a login blacklists the customer's earlier tokens.
- logout: blacklists the token; answers the customer with `auth_token`/`token` null.
- refresh (`POST /customer/refresh`): blacklists the token, answers the customer with a new one.
- passwordless request: `email`; 400 when the site disables it, 404 for an unknown email,
  429 after 5 requests per hour per email; puts a one-time token in the outbox (valid
  `passwordless_token_duration` days); answers `{"data": {"message": ...}}`.
- passwordless login: `token` → the customer with a JWT; an unknown, used or expired token → 404.
"""

from __future__ import annotations

import math
import secrets
import string
import time

from sandbox import clock
from sandbox.errors import APIError, BusinessRuleError, NotFound, ValidationError
from sandbox.open import tokens
from sandbox.open.customer import answer, apply_profile, check_profile, resource, unique_or_400
from sandbox.open.pipeline import OpenCall
from sandbox.passwords import check_password, hash_password
from sandbox.records import new_customer
from sandbox.validation import MISSING, Checker

BAD_CREDENTIALS = "Invalid credentials! Please try again."
PASSWORDLESS_PER_HOUR = 5
REGISTER_FIELDS = {
    "email",
    "password",
    "security_token",
    "language",
    "username",
    "display_name",
    "first_name",
    "last_name",
    "phone",
    "salutation",
    "title",
    "organization",
    "old_provider_id",
    "metadata",
}


def password_problem(password: str, strong: bool) -> str | None:
    """Why `password` fails the site's rule, or None (OPEN_API.md §5.1 register)."""
    if not strong:
        return None if len(password) >= 6 else "The password must be at least 6 characters."
    if not 8 <= len(password) <= 30:
        return "The password must be 8 to 30 characters long."
    missing = [
        name
        for name, test in (
            ("a digit", lambda ch: ch.isdigit()),
            ("a symbol", lambda ch: ch in string.punctuation or ch == " "),
            ("a lower-case letter", str.islower),
            ("an upper-case letter", str.isupper),
        )
        if not any(test(ch) for ch in password)
    ]
    if missing:
        return f"The password must contain {', '.join(missing)}."
    return None


def register(call: OpenCall):
    check = Checker(call.body, REGISTER_FIELDS)
    email = check.email("email", required=True)
    password = check.raw("password", required=True)
    if password is not MISSING and not isinstance(password, str):
        check.add("password", "The password must be a string.")
    elif isinstance(password, str) and (problem := password_problem(password, call.site.open.strong_password)):
        check.add("password", problem)
    check.string("security_token", max_len=2000)
    values = check_profile(check)
    check.done()
    unique_or_400(call.store, call.site_id, {"email": email, **values}, None)
    now = clock.now_unix()
    customer = call.store.add(
        "customers", new_customer(call.store.next_id(), call.site_id, now, email=email, has_password=True)
    )
    customer["_password_hash"] = hash_password(password)
    apply_profile(customer, values)
    return answer(call, customer)


def _failures(call: OpenCall, key: tuple[int, str]) -> list[float]:
    window = call.sandbox.knobs.login_lockout_window
    now = time.time()
    kept = [t for t in call.store.open.login_failures.get(key, []) if t > now - window]
    call.store.open.login_failures[key] = kept
    return kept


def login(call: OpenCall):
    check = Checker(call.body, {"email", "username", "password", "language"})
    email = check.string("email")
    username = check.string("username")
    password = check.raw("password", required=True)
    if password is not MISSING and not isinstance(password, str):
        check.add("password", "The password must be a string.")
    if email in (MISSING, None) and username in (MISSING, None) and "email" not in check.errors:
        check.add("email", "The email field is required when username is not present.")
    check.done()
    identifier = (email if isinstance(email, str) else username).casefold()
    key = (call.site_id, identifier)
    failures = _failures(call, key)
    knobs = call.sandbox.knobs
    if len(failures) >= knobs.login_max_attempts:
        retry = failures[len(failures) - knobs.login_max_attempts] + knobs.login_lockout_window - time.time()
        raise tokens.TooManyLoginAttempts(max(1, math.ceil(retry)))
    field = "email" if isinstance(email, str) else "username"
    customer = next(
        (
            c
            for c in call.store.live("customers", call.site_id)
            if isinstance(c.get(field), str) and c[field].casefold() == identifier
        ),
        None,
    )
    if customer is None or not check_password(password, customer.get("_password_hash")):
        failures.append(time.time())
        raise NotFound(BAD_CREDENTIALS)
    call.store.open.login_failures.pop(key, None)
    if call.site.open.single_session:
        tokens.blacklist_customer(call.store, customer["id"])
    return answer(call, customer)


def logout(call: OpenCall):
    Checker(call.body, set()).done()
    tokens.blacklist(call.store, call.claims["jti"])
    return 200, {"data": resource(call.store, call.site_id, call.customer, None)}


def refresh(call: OpenCall):
    Checker(call.body, {"language"}).done()
    tokens.blacklist(call.store, call.claims["jti"])
    return answer(call)


class TooManyRequests(APIError):
    status = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(message, headers={"Retry-After": str(retry_after)})


def passwordless_request(call: OpenCall):
    check = Checker(call.body, {"email", "language"})
    email = check.email("email", required=True)
    check.done()
    if not call.site.open.passwordless_enabled:
        raise BusinessRuleError("Passwordless login is not enabled for this site.")
    customer = next((c for c in call.store.live("customers", call.site_id) if c["email"] == email), None)
    if customer is None:
        raise NotFound(f"No customer with email {email} on this site.")
    now = time.time()
    key = (call.site_id, email)
    recent = [t for t in call.store.open.passwordless_requests.get(key, []) if t > now - 3600]
    if len(recent) >= PASSWORDLESS_PER_HOUR:
        raise TooManyRequests(
            "Too many passwordless login requests; try again later.", max(1, math.ceil(recent[0] + 3600 - now))
        )
    recent.append(now)
    call.store.open.passwordless_requests[key] = recent
    token = secrets.token_urlsafe(24)
    expires = clock.now_unix() + call.site.open.passwordless_token_duration * 86_400
    call.store.open.passwordless[token] = (call.site_id, customer["id"], expires)
    call.store.open.outbox.append(
        {
            "type": "passwordless_login",
            "site_id": call.site_id,
            "to": email,
            "customer_id": customer["id"],
            "token": token,
            "expires_at": expires,
            "sent_at": clock.now_unix(),
        }
    )
    return 200, {"data": {"message": "A login link has been sent to your email."}}


def passwordless_login(call: OpenCall):
    check = Checker(call.body, {"token", "language"})
    token = check.string("token", required=True, nullable=False, max_len=500)
    check.done()
    entry = call.store.open.passwordless.get(token)
    if entry is None or entry[0] != call.site_id or entry[2] < clock.now_unix():
        raise NotFound("The login link is invalid or has expired.")
    del call.store.open.passwordless[token]  # one use
    customer = call.store.find("customers", call.site_id, entry[1])
    if customer is None:
        raise ValidationError({"token": ["The customer of this login link no longer exists."]})
    if call.site.open.single_session:
        tokens.blacklist_customer(call.store, customer["id"])
    return answer(call, customer)
