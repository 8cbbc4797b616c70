"""Subscribers: Pelcro customers of one site who sign in to the Open server (`/open`).

`subscriber_for` is the one way a subscriber's gateway user record is made (see
`accounts.models.Subscriber` for what that user may and may not do);
`is_subscriber` tells operator code paths to refuse it.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q

from accounts.models import Connection, Site, Subscriber, SubscriberCredential


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
    reported it at this sign-in) is kept on the subscriber for display. A user record left
    by an earlier subscriber record of the same site + customer (deleted with its site when
    Pelcro's `GET /account` stopped listing it, or in the admin) is taken up again: it
    keeps that subscriber's old connections and audit rows. Raises `SubscriberNameTaken`
    if an operator's account uses the username `Subscriber.username_for(...)` (one that
    could sign in or act on an account: it is never made a subscriber).
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
            user = User._default_manager.select_for_update().filter(**{User.USERNAME_FIELD: username}).first()
            if user is not None and not _left_by_a_subscriber(user):
                raise SubscriberNameTaken(username)
            if user is None:
                user = User(**{User.USERNAME_FIELD: username}, is_staff=False, is_superuser=False, is_active=True)
                user.set_unusable_password()
                user.save()
            return Subscriber.objects.create(user=user, site=site, customer_id=customer_id, email=email)
    except IntegrityError:
        # A concurrent first sign-in of the same customer made it first.
        return Subscriber.objects.select_related("user").get(site=site, customer_id=customer_id)


def _left_by_a_subscriber(user) -> bool:
    """Whether `user` (holding a subscriber's username) is what a deleted subscriber record
    left: no subscriber record, no usable password, not staff, no account memberships, so
    it can neither sign in nor act on an account (`subscriber_for` made it so)."""
    return (
        not is_subscriber(user)
        and not user.has_usable_password()
        and not user.is_staff
        and not user.is_superuser
        and not user.memberships.exists()
    )


def has_live_access(subscriber: Subscriber) -> bool:
    """Whether any connection of `subscriber` is still active or still holds their Pelcro
    JWT (a revoked one whose sign-out at Pelcro is pending): while so, the admin does not
    delete them (`accounts.admin.SubscriberAdmin`)."""
    return (
        Connection.objects.filter(user_id=subscriber.user_id)
        .filter(Q(revoked_at__isnull=True) | Q(subscriber_credential__isnull=False))
        .exists()
    )


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
