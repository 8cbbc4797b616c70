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

from dataclasses import dataclass

from accounts.models import Connection, Site, Subscriber, SubscriberCredential
from accounts.subscribers import SubscriberNameTaken, subscriber_for
from mcp_bridge.open.client import CustomerSignIn, InvalidCredentials, LoginLocked, OpenAPIClient
from mcp_bridge.orm import run_db
from mcp_bridge.upstream.errors import RateLimited, UpstreamError, UpstreamUnavailable, ValidationFailed


class SignInRefused(Exception):
    """The sign-in did not succeed; `message` is for the person, `retry_after` (seconds) is
    set when waiting is the way on (lock-out, rate limit)."""

    def __init__(self, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


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
            "the publication to turn on subscriber access."
        )
    email = email.strip()
    if not email or not password:
        raise SignInRefused("Enter the e-mail address and password of your account with this publication.")
    try:
        customer = await client.login(account_id=site.account_id, site_id=site.site_id, email=email, password=password)
    except InvalidCredentials:
        raise SignInRefused(
            "That e-mail address and password do not match an account of this publication. "
            "Check them and try again (use the password you use on the publication's site)."
        ) from None
    except LoginLocked as locked:
        raise SignInRefused(
            f"Too many sign-in attempts for this account. Try again in {locked.retry_after} seconds.",
            retry_after=locked.retry_after,
        ) from None
    except RateLimited as limited:
        raise SignInRefused(
            f"The publication is busy. Try again in {limited.retry_after} seconds.", retry_after=limited.retry_after
        ) from None
    except ValidationFailed as invalid:
        raise SignInRefused(f"The publication refused the sign-in: {invalid.message}") from None
    except UpstreamUnavailable:
        raise SignInRefused(
            "The publication's sign-in could not be reached. Try again in a minute.", retry_after=60
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
