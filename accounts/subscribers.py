"""Subscribers: Pelcro customers of one site who sign in to the Open server (`/open`).

`subscriber_for` is the one way a subscriber's gateway user record is made (see
`accounts.models.Subscriber` for what that user may and may not do);
`is_subscriber` tells operator code paths to refuse it.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from accounts.models import Site, Subscriber, SubscriberCredential


class SubscriberNameTaken(Exception):
    """An operator's user record already holds the username a subscriber needs."""


def is_subscriber(user) -> bool:
    """True if `user` is a subscriber's record (never an operator, whatever its flags say)."""
    if user is None or not getattr(user, "pk", None):
        return False
    try:
        return user.subscriber is not None
    except Subscriber.DoesNotExist:
        return False


def subscriber_for(site: Site, customer_id: int, email: str) -> Subscriber:
    """The subscriber for Pelcro customer `customer_id` of `site`, created on first sign-in.

    The user record gets no usable password, no e-mail, is never staff; `email` (as Pelcro
    reported it at this sign-in) is kept on the subscriber for display. Raises
    `SubscriberNameTaken` if an operator's account already uses the username
    `Subscriber.username_for(...)` (it is never reused as a subscriber).
    """
    subscriber = Subscriber.objects.select_related("user").filter(site=site, customer_id=customer_id).first()
    if subscriber is not None:
        if subscriber.email != email:
            subscriber.email = email
            subscriber.save(update_fields=["email"])
        return subscriber
    User = get_user_model()
    username = Subscriber.username_for(site.site_id, customer_id)
    try:
        with transaction.atomic():
            if User._default_manager.filter(**{User.USERNAME_FIELD: username}).exists():
                raise SubscriberNameTaken(username)
            user = User(**{User.USERNAME_FIELD: username}, is_staff=False, is_superuser=False, is_active=True)
            user.set_unusable_password()
            user.save()
            return Subscriber.objects.create(user=user, site=site, customer_id=customer_id, email=email)
    except IntegrityError:
        # A concurrent first sign-in of the same customer made it first.
        return Subscriber.objects.select_related("user").get(site=site, customer_id=customer_id)


def may_connect(subscriber: Subscriber | None) -> bool:
    """Whether `subscriber` may (still) authorize or keep a connection: its user record is
    active and its site still has subscriber access (`Site.subscriber_access_enabled`)."""
    return subscriber is not None and subscriber.user.is_active and subscriber.site.subscriber_access_enabled


def connection_usable(connection) -> bool:
    """A subscriber's connection may be used (refresh, introspection, token checks): active,
    its subscriber may connect (`may_connect`), the connection is on that subscriber's
    site's account, and it holds the subscriber's Pelcro JWT (`SubscriberCredential`)."""
    if connection.revoked_at is not None:
        return False
    subscriber = Subscriber.objects.select_related("site", "user").filter(user_id=connection.user_id).first()
    return (
        may_connect(subscriber)
        and subscriber.site.account_id == connection.account_id
        and SubscriberCredential.objects.filter(connection=connection).exists()
    )
