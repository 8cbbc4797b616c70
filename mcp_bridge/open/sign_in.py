"""A subscriber's sign-in: e-mail and password checked through the Open API login
(OPEN_API.md §2, §5.1), for the subscriber step of `/oauth/authorize` (issue 14).

`sign_in_subscriber` is the one place a subscriber proves who they are: the site must have
subscriber access enabled (`Site.subscriber_access_enabled`); Pelcro checks the password
(the gateway never stores or logs it); the answer is the gateway's `Subscriber` for that
site + customer id (created on first sign-in) with the customer's fresh JWT, which the
connection then keeps (`keep_jwt`). Refusals raise `SignInRefused` with a message for the
sign-in form that says what to do, never which e-mail addresses exist.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from asgiref.sync import async_to_sync

from accounts import throttle
from accounts.models import Connection, Site, Subscriber, SubscriberCredential
from accounts.subscribers import SubscriberNameTaken, subscriber_for
from mcp_bridge.open.client import CustomerSignIn, InvalidCredentials, LoginLocked, OpenAPIClient, get_client
from mcp_bridge.orm import run_db
from mcp_bridge.upstream.errors import RateLimited, UpstreamError, UpstreamUnavailable, ValidationFailed


class SignInRefused(Exception):
    """The sign-in did not succeed; `message` is for the person, `retry_after` (seconds) is
    set when waiting is the way on (lock-out, rate limit). `reason` says why, for the page's
    status and the gateway's own counting: "no_access" (site), "missing" (empty field),
    "invalid_credentials", "locked" (Pelcro's lock-out or the gateway's per-IP one), "busy"
    (rate limited), "unavailable", "refused" (anything else)."""

    def __init__(self, message: str, retry_after: int | None = None, reason: str = "refused"):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.reason = reason

    @property
    def status(self) -> int:
        """The HTTP status of a page that shows this refusal: 429 when waiting is the way
        on, 503 when Pelcro could not be reached, else 200 (the form again, with the message)."""
        return {"locked": 429, "busy": 429, "unavailable": 503}.get(self.reason, 200)


@dataclass(frozen=True)
class SubscriberSignIn:
    subscriber: Subscriber
    customer: CustomerSignIn  # the Pelcro customer and its JWT (never shown, never logged)


async def sign_in_subscriber(client: OpenAPIClient, *, site_id: int, email: str, password: str) -> SubscriberSignIn:
    """Check `email` + `password` with Pelcro for site `site_id`; the subscriber and JWT.

    Raises `SignInRefused`: the site is unknown or has no subscriber access; the e-mail or
    password is wrong (one message for both, as Pelcro answers); too many attempts (with
    `retry_after`); Pelcro unreachable or refusing for another reason.
    """
    site = await run_db(_site_with_access, site_id)
    if site is None:
        raise SignInRefused(
            "This publication does not offer sign-in for apps here. Pick another one, or ask "
            "the publication to turn on subscriber access.",
            reason="no_access",
        )
    email = email.strip()
    if not email or not password:
        raise SignInRefused(
            "Enter the e-mail address and password of your account with this publication.", reason="missing"
        )
    try:
        customer = await client.login(account_id=site.account_id, site_id=site.site_id, email=email, password=password)
    except InvalidCredentials:
        raise SignInRefused(
            "That e-mail address and password do not match an account of this publication. "
            "Check them and try again (use the password you use on the publication's site).",
            reason="invalid_credentials",
        ) from None
    except LoginLocked as locked:
        raise SignInRefused(
            f"Too many sign-in attempts for this account. Try again in {locked.retry_after} seconds.",
            retry_after=locked.retry_after,
            reason="locked",
        ) from None
    except RateLimited as limited:
        raise SignInRefused(
            f"The publication is busy. Try again in {limited.retry_after} seconds.",
            retry_after=limited.retry_after,
            reason="busy",
        ) from None
    except ValidationFailed as invalid:
        raise SignInRefused(f"The publication refused the sign-in: {invalid.message}") from None
    except UpstreamUnavailable:
        raise SignInRefused(
            "The publication's sign-in could not be reached. Try again in a minute.",
            retry_after=60,
            reason="unavailable",
        ) from None
    except UpstreamError as refused:
        raise SignInRefused(f"The publication refused the sign-in: {refused.message}") from None
    try:
        subscriber = await run_db(
            subscriber_for, site, customer.customer_id, str(customer.customer.get("email") or email)
        )
    except SubscriberNameTaken:
        raise SignInRefused("This account cannot be connected here; contact the gateway's operators.") from None
    return SubscriberSignIn(subscriber=subscriber, customer=customer)


def sign_in_from_page(*, site: Site, email: str, password: str, client_ip: str, keep: bool) -> SubscriberSignIn:
    """`sign_in_subscriber` for the sign-in pages (sync Django views), behind the gateway's
    per-IP count of failed subscriber sign-ins (`accounts.throttle`: a locked IP is refused
    before Pelcro sees the password; each wrong password counts).

    `keep`: whether the caller keeps the customer's JWT (the authorization flow hands it to
    the connection). Otherwise it is logged out at Pelcro at once (best effort), so no
    unused sign-in stays valid there. Raises `SignInRefused`."""
    wait = throttle.subscriber_sign_in_retry_after(client_ip)
    if wait:
        minutes = max(1, round(wait / 60))
        raise SignInRefused(
            f"Too many failed sign-ins from your network. Try again in {minutes} minute{'s' if minutes > 1 else ''}.",
            retry_after=wait,
            reason="locked",
        )
    try:
        return async_to_sync(_sign_in_from_page)(site, email, password, keep)
    except SignInRefused as refused:
        if refused.reason == "invalid_credentials":
            throttle.record_subscriber_sign_in_failure(client_ip)
        raise


async def _sign_in_from_page(site: Site, email: str, password: str, keep: bool) -> SubscriberSignIn:
    client = get_client()  # this loop's (the server's, under ASGI)
    signed_in = await sign_in_subscriber(client, site_id=site.site_id, email=email, password=password)
    if not keep:
        with contextlib.suppress(UpstreamError):
            await client.logout(account_id=site.account_id, site_id=site.site_id, jwt=signed_in.customer.jwt)
    return signed_in


def discard_sign_in(site: Site, jwt: str) -> None:
    """Log a JWT that nothing will use out at Pelcro (`POST /auth/logout`), best effort: a
    subscriber who cancels, changes publication or signs in again on the authorization
    page. A failure leaves it to expire at Pelcro; the gateway keeps no copy either way."""
    with contextlib.suppress(UpstreamError):
        async_to_sync(_logout)(site, jwt)


async def _logout(site: Site, jwt: str) -> None:
    await get_client().logout(account_id=site.account_id, site_id=site.site_id, jwt=jwt)


def keep_jwt(connection: Connection, customer: CustomerSignIn) -> SubscriberCredential:
    """Store (or replace) the connection's Pelcro JWT, encrypted, with its expiry."""
    credential = SubscriberCredential.objects.filter(connection=connection).first() or SubscriberCredential(
        connection=connection
    )
    credential.set_jwt(customer.jwt, customer.expires_at)
    credential.save()
    return credential


def _site_with_access(site_id: int) -> Site | None:
    return Site.objects.filter(site_id=site_id, subscriber_access_enabled=True).first()
