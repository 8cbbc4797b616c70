"""The one sign-in path: every password check in the gateway goes through `SignInBackend`.

`/login`, `/admin/login/` and the admin's change-password form (its current password) all
call Django's `authenticate()`, whose only backend (AUTHENTICATION_BACKENDS) is this one, so
they share one lock-out and one set of counters (`accounts.throttle`):

- failures are counted per **sign-in name as typed** (trimmed, case-folded) and per client
  IP; once either reaches its cap, `authenticate()` refuses without checking the password
  for `LOGIN_LOCKOUT_SECONDS` (the form then says "try again in about N minutes").
- The answer depends only on what was typed, never on which accounts exist: an unknown
  name is counted, locked and answered exactly like a known one, and costs the same
  password hashing (Django's own mitigation, `ModelBackend`). That is why the counter is
  not per account: a shared per-account counter would lock a person's e-mail address once
  their username was locked, telling a guesser which e-mail belongs to which account (or
  exists at all). The price: someone with both a username and an e-mail address can be
  guessed at 2 × `LOGIN_MAX_FAILURES` times per window; the per-IP cap bounds it further.
- A successful sign-in clears the counter of the name it used.

The client IP is the ASGI peer (`REMOTE_ADDR`); it comes from `X-Forwarded-For` only for the
proxies in `FORWARDED_ALLOW_IPS` (uvicorn's setting).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from accounts import throttle
from accounts.subscribers import is_subscriber

LOCKED = "locked"
_LOCKED_ATTRIBUTE = "_sign_in_locked_for"


def sign_in_name(identifier: str) -> str:
    """The counter key of a typed e-mail address or username (case does not make a new name)."""
    return identifier.strip().casefold()


def client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "") if request is not None else ""


def locked_for(request) -> int:
    """Seconds the last `authenticate()` on this request was refused for (0: not locked)."""
    return getattr(request, _LOCKED_ATTRIBUTE, 0) if request is not None else 0


def resolve_user(identifier: str):
    """The active-or-not user an identifier names: exact username first, else the one user
    with that e-mail address (case-insensitive); None if neither."""
    User = get_user_model()
    user = User._default_manager.filter(**{User.USERNAME_FIELD: identifier}).first()
    if user is None and "@" in identifier:
        matches = list(User._default_manager.filter(email__iexact=identifier)[:2])
        user = matches[0] if len(matches) == 1 else None
    return user


class SignInBackend(ModelBackend):
    """`ModelBackend` (permissions included) with e-mail-or-username sign-in and the lock-out."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if not username or password is None:
            return None
        name, ip = sign_in_name(username), client_ip(request)
        wait = throttle.login_retry_after(name, ip)
        if wait:
            if request is not None:
                setattr(request, _LOCKED_ATTRIBUTE, wait)
            return None
        user = resolve_user(username.strip())
        if user is None:
            get_user_model()().set_password(password)  # the same hashing work as a real check
            accepted = False
        else:
            accepted = user.check_password(password) and self.user_can_authenticate(user)
        if not accepted:
            throttle.record_login_failure(name, ip)
            return None
        throttle.clear_login_failures(name)
        return user

    def user_can_authenticate(self, user) -> bool:
        """Active operators only: a subscriber's record (`accounts.subscribers`) never signs
        in as an operator, nor is it ever restored from an operator session (`get_user`)."""
        return super().user_can_authenticate(user) and not is_subscriber(user)
