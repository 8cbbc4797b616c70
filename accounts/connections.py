"""Connections: create one from a redeemed consent, revoke one (and all its tokens) at once."""

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from accounts import auth_epoch
from accounts.access import may_waive_confirmations
from accounts.models import AuthorizationConsent, Connection

# How stale `last_used_at` may get before a request writes it again: keeps the hot path
# (every MCP request) from writing the row every time while "last used" stays accurate.
LAST_USED_RESOLUTION_SECONDS = 60


def connection_for_consent(consent: AuthorizationConsent) -> Connection:
    """The connection a redeemed consent's tokens belong to.

    An active connection with the same user, client, account and access level is reused
    (re-authorizing the same app does not pile up rows; it takes this consent's choice of
    confirmations); otherwise a new one is created.
    Two client registrations (e.g. `pelcro-acme` and `pelcro-other`) always get separate
    connections, so one person can hold several accounts at once.
    """
    connection = (
        Connection.objects.filter(
            user_id=consent.user_id,
            application_id=consent.application_id,
            account_id=consent.account_id,
            access=consent.access,
            revoked_at__isnull=True,
        )
        .order_by("-created_at")
        .first()
    )
    # Turned off only by an owner or admin, and only while they still are one.
    confirm_writes = consent.confirm_writes or not may_waive_confirmations(consent.user_id, consent.account_id)
    if connection is None:
        connection = Connection.objects.create(
            user_id=consent.user_id,
            application_id=consent.application_id,
            account_id=consent.account_id,
            access=consent.access,
            confirm_writes=confirm_writes,
        )
    elif connection.confirm_writes != confirm_writes:
        connection.confirm_writes = confirm_writes  # the latest consent's choice
        connection.save(update_fields=["confirm_writes"])
    return connection


@transaction.atomic
def revoke_connections(connections, by: str = "") -> int:
    """Revoke connections and every token issued through them, effective immediately in
    every process.

    `by` says who did it (`Connection.revoked_by`: "user:<username>", "staff:<username>",
    "client", "membership"); revoked connections stay listed as revoked. Marks each
    connection revoked, revokes the refresh-token families (so no refresh can
    mint a new token) and deletes the access tokens. Returns how many were newly revoked.
    Raises `accounts.auth_epoch.EpochUnavailable`, with nothing revoked, if the change
    cannot be published to the other processes (their cached token checks).
    """
    AccessToken = get_access_token_model()
    RefreshToken = get_refresh_token_model()
    now = timezone.now()
    ids = list(
        Connection.objects.filter(pk__in=[c.pk for c in connections], revoked_at__isnull=True).values_list(
            "pk", flat=True
        )
    )
    if not ids:
        return 0
    auth_epoch.hold_until_commit()  # before the write: update() sends no signal
    Connection.objects.filter(pk__in=ids).update(revoked_at=now, revoked_by=by[:200])
    token_ids = AccessToken.objects.filter(binding__connection_id__in=ids).values_list("pk", flat=True)
    families = set(
        RefreshToken.objects.filter(access_token_id__in=token_ids)
        .exclude(token_family=None)
        .values_list("token_family", flat=True)
    )
    families |= set(
        AuthorizationConsent.objects.filter(connection_id__in=ids)
        .exclude(token_family=None)
        .values_list("token_family", flat=True)
    )
    for family in families:
        RefreshToken.revoke_family(family)
    # Anything left (a token without a refresh token) goes too.
    AccessToken.objects.filter(binding__connection_id__in=ids).delete()
    return len(ids)


def revoke_connection(connection: Connection, by: str = "") -> bool:
    """Revoke one connection; True if it was active."""
    return revoke_connections([connection], by) == 1


def touch(connection: Connection) -> None:
    """Record that a connection was just used, writing at most once per resolution window
    (the check is on the loaded row, so the hot path usually issues no write at all)."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=LAST_USED_RESOLUTION_SECONDS)
    if connection.last_used_at is not None and connection.last_used_at >= cutoff:
        return
    touch_by_id(connection.pk, now)
    connection.last_used_at = now


def touch_by_id(connection_id: int, now=None) -> None:
    """`touch` for a connection that is not loaded: one UPDATE, a no-op when it is fresh."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=LAST_USED_RESOLUTION_SECONDS)
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=cutoff)
    Connection.objects.filter(stale, pk=connection_id).update(last_used_at=now)
