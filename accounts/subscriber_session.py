"""A subscriber's signed-in browser session: who is signed in on the subscriber pages.

Subscribers (`accounts.models.Subscriber`) never use Django's authentication: their user
record has no usable password and `accounts.sign_in` refuses it. Their browser sign-in is a
session entry of its own, under `SESSION_KEY`, next to (never instead of) an operator's
Django login in the same browser:

- `remember_subscriber(request, subscriber)` after the Open API login succeeded
  (`mcp_bridge.open.sign_in.sign_in_subscriber`); the session key is rotated first (against
  session fixation, as `django.contrib.auth.login` does);
- `current_subscriber(request)` → the `Subscriber` or None: the entry must be younger than
  `MAX_AGE_SECONDS` (counted from the sign-in, not from the last page), the subscriber
  must still exist with an active user record, and its site must still have subscriber
  access (`Site.subscriber_access_enabled`);
- `forget_subscriber(request)` signs the subscriber out (only that: an operator signed in
  in the same browser stays signed in);
- `subscriber_required(view)`: a view decorator; without a current subscriber the browser
  goes to the sign-in page (`sign_in_url`), which comes back to the page afterwards.

Signing in as a subscriber never sets `request.user`, and an operator's sign-in never makes
`current_subscriber` answer: operator pages (Django's `login_required`, staff checks) and
subscriber pages each accept only their own. The entry holds ids and a time only, never a
Pelcro JWT or password.
"""

from __future__ import annotations

import functools
import time
from urllib.parse import urlencode

from django.shortcuts import redirect
from django.urls import reverse

from accounts.models import Subscriber

SESSION_KEY = "pelcro_subscriber"
MAX_AGE_SECONDS = 60 * 60  # a subscriber signs in again after an hour
SIGN_IN_URL_NAME = "open-sign-in"  # mcp_bridge/open/views.py (resolved by name: no import)


def remember_subscriber(request, subscriber: Subscriber) -> None:
    """Mark `subscriber` as signed in in this browser session (rotating the session key)."""
    request.session.cycle_key()
    request.session[SESSION_KEY] = {
        "subscriber": subscriber.pk,
        "user": subscriber.user_id,
        "site_id": subscriber.site.site_id,
        "at": int(time.time()),
    }
    request._pelcro_subscriber = subscriber


def current_subscriber(request) -> Subscriber | None:
    """The subscriber signed in in this browser session, or None (see the module docstring).
    An expired or no longer valid entry is removed."""
    cached = getattr(request, "_pelcro_subscriber", False)
    if cached is not False:
        return cached
    subscriber = _load(request)
    request._pelcro_subscriber = subscriber
    return subscriber


def forget_subscriber(request) -> None:
    """Sign the subscriber out of this browser session (an operator sign-in stays)."""
    request.session.pop(SESSION_KEY, None)
    request._pelcro_subscriber = None


def sign_in_url(next_url: str = "", site_id: int | None = None) -> str:
    """The subscriber sign-in page, e.g. `/open/sign-in?next=%2Fopen%2Fconnections&site_id=14`;
    `next` must be a path on this server (the page ignores any other)."""
    query = {key: value for key, value in (("next", next_url), ("site_id", site_id)) if value}
    return reverse(SIGN_IN_URL_NAME) + (f"?{urlencode(query)}" if query else "")


def subscriber_required(view):
    """Decorator for a subscriber page: `request.subscriber` is the current subscriber;
    without one the browser is sent to the sign-in page, which returns to this page."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        subscriber = current_subscriber(request)
        if subscriber is None:
            return redirect(sign_in_url(request.get_full_path()))
        request.subscriber = subscriber
        return view(request, *args, **kwargs)

    return wrapper


def _load(request) -> Subscriber | None:
    entry = request.session.get(SESSION_KEY)
    if not isinstance(entry, dict):
        return None
    at = entry.get("at")
    if not isinstance(at, int) or not 0 <= time.time() - at < MAX_AGE_SECONDS:
        forget_subscriber(request)
        return None
    subscriber = (
        Subscriber.objects.select_related("site", "user")
        .filter(
            pk=entry.get("subscriber"),
            user_id=entry.get("user"),
            site__site_id=entry.get("site_id"),
            user__is_active=True,
            site__subscriber_access_enabled=True,
        )
        .first()
    )
    if subscriber is None:
        forget_subscriber(request)
    return subscriber
