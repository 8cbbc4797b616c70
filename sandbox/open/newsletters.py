"""Newsletter sign-ups (OPEN_API.md §5.9), public (no token): `POST /newsletter`,
`GET|PUT|DELETE /newsletter/{email}`.

One entry per email per site: `email` required (stored lower case); optional `first_name`,
`last_name`, `postal_code`, `source` (lowercased, one of `web`, `phone`, `mail`, `other`;
default `web`), `lists` (string, default `default`), `consent_url`, `consent_text`,
`consent_type`, `consent_ip` (omitted consent fields stored as "", as in Core [core-nl]).
Entry: those fields plus `id`, `created_at`, `updated_at` (Unix). Answers `{"data": entry}`
(create: 201 **chosen**). A duplicate email → 400 validation; update of an unknown email →
400 (§5.9); get or delete of an unknown email → 404 (**chosen**); delete answers 204.
"""

from __future__ import annotations

from sandbox import clock
from sandbox.errors import NotFound, ValidationError
from sandbox.open.pipeline import OpenCall
from sandbox.validation import MISSING, Checker

SOURCES = ("web", "phone", "mail", "other")
CONSENT = ("consent_url", "consent_text", "consent_type", "consent_ip")
TEXT = ("first_name", "last_name", "postal_code", "lists")
FIELDS = {"email", "source", *CONSENT, *TEXT}


def _values(check: Checker) -> dict:
    values = {name: check.string(name, max_len=2000 if name == "consent_text" else 255) for name in (*TEXT, *CONSENT)}
    source = check.string("source", max_len=20)
    if isinstance(source, str):
        source = source.lower()
        if source not in SOURCES:
            check.add("source", f"The selected source is invalid; use one of: {', '.join(SOURCES)}.")
            source = MISSING
    values["source"] = source
    return values


def _email(raw: str) -> str:
    return raw.strip().lower()


def subscribe(call: OpenCall):
    check = Checker(call.body, FIELDS)
    email = check.email("email", required=True)
    values = _values(check)
    check.done()
    entries = call.store.open.newsletters[call.site_id]
    if email in entries:
        raise ValidationError({"email": ["This email is already subscribed to the newsletter."]})
    now = clock.now_unix()
    entry = {"id": call.store.next_id(), "email": email, "created_at": now, "updated_at": now}
    for name, value in values.items():
        default = "" if name in CONSENT else {"source": "web", "lists": "default"}.get(name)
        entry[name] = default if value in (MISSING, None) else value
    entries[email] = entry
    return 201, {"data": entry}


def get(call: OpenCall):
    entry = call.store.open.newsletters[call.site_id].get(_email(call.path_params["email"]))
    if entry is None:
        raise NotFound(f"No newsletter subscription for {call.path_params['email']}.")
    return 200, {"data": entry}


def update(call: OpenCall):
    check = Checker(call.body, FIELDS - {"email"})
    values = _values(check)
    check.done()
    entry = call.store.open.newsletters[call.site_id].get(_email(call.path_params["email"]))
    if entry is None:
        raise ValidationError({"email": [f"No newsletter subscription for {call.path_params['email']}."]})
    for name, value in values.items():
        if value is not MISSING:
            entry[name] = ("" if name in CONSENT else None) if value is None else value
    entry["updated_at"] = clock.now_unix()
    return 200, {"data": entry}


def unsubscribe(call: OpenCall):
    entries = call.store.open.newsletters[call.site_id]
    if entries.pop(_email(call.path_params["email"]), None) is None:
        raise NotFound(f"No newsletter subscription for {call.path_params['email']}.")
    return 204, None
