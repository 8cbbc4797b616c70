"""Connections: create one from a redeemed consent, revoke one (and all its tokens) at once,
and end the subscriber connections that may or can no longer be used (`end_site_connections`,
`end_dead_connections`).

Every revoke sends `connections_revoked`, inside the revoking transaction: what must follow
a revoke outside this app (a subscriber's Pelcro sign-in is signed out by
`mcp_bridge.open.sign_out`, which `accounts` may not import) listens to it and acts on
commit.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.dispatch import Signal
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model, refresh_token_expire_timedelta

from accounts import auth_epoch
from accounts.access import may_waive_confirmations
from accounts.models import AuthorizationConsent, Connection, Site, TokenBinding

# How stale `last_used_at` may get before a request writes it again: keeps the hot path
# (every MCP request) from writing the row every time while "last used" stays accurate.
LAST_USED_RESOLUTION_SECONDS = 60

# Sent with `connection_ids` (list of the ids newly revoked) and `by` (the `revoked_by`
# marker) right after they are marked revoked, inside the revoking transaction, by every
# revoke in this app: `revoke_connections` and the RFC 7009 endpoint
# (`accounts.views.token_endpoints.RevokeView`). A receiver that acts outside the database
# must do so on commit (`transaction.on_commit`) and must not block: the revoke waits for it.
connections_revoked = Signal()

# `Connection.revoked_by` of the subscriber connections ended here.
SITE_ACCESS_OFF = "site"  # the site's subscriber access was turned off
EXPIRED = "expired"  # its Pelcro sign-in expired, or no OAuth token of it can be used any more
# A connection younger than this is never taken for dead: its tokens and its Pelcro JWT are
# written by the code exchange, and a clock a little off must not end a new connection.
DEAD_AFTER = timedelta(minutes=5)


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
    "client", "membership", "pelcro", "site", "expired"); revoked connections stay listed
    as revoked. Sends `connections_revoked` for the newly revoked ones. Marks each
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
    connections_revoked.send(sender=Connection, connection_ids=ids, by=by[:200])
    return len(ids)


def revoke_connection(connection: Connection, by: str = "") -> bool:
    """Revoke one connection; True if it was active."""
    return revoke_connections([connection], by) == 1


def end_site_connections(site: Site) -> int:
    """Revoke every active connection of `site`'s subscribers, with their tokens: called
    when its subscriber access is turned off or it is deleted (`accounts.signals`). Their tokens are refused
    from that moment anyway (`accounts.tokens.open_credentials` reads the switch); revoking
    them makes the connections page and the admin say so and sends `connections_revoked`,
    so their Pelcro sign-ins are signed out. Returns how many were active."""
    return revoke_connections(
        Connection.objects.filter(user__subscriber__site=site, revoked_at__isnull=True).only("pk"),
        by=SITE_ACCESS_OFF,
    )


def end_dead_connections(limit: int, now: datetime | None = None) -> int:
    """Revoke at most `limit` active subscriber connections that still hold a Pelcro JWT but
    may or can never be used again, so their sign-ins get signed out (the beat sweep,
    `mcp_bridge.open.tasks`):

    - those on a site whose subscriber access is off (a bulk update sends no signal, so
      `end_site_connections` may not have run): `revoked_by = "site"`;
    - older than DEAD_AFTER, those whose JWT has expired (Pelcro refuses it and nothing can
      refresh it) or with no OAuth token left that works or can be refreshed (every access
      token expired, and no unrevoked refresh token within REFRESH_TOKEN_SECONDS of its
      access token's expiry: django-oauth-toolkit's own rule): `revoked_by = "expired"`.

    Returns how many were revoked."""
    now = now or timezone.now()
    held = Connection.objects.filter(
        revoked_at__isnull=True, user__subscriber__isnull=False, subscriber_credential__isnull=False
    )
    off = list(
        held.filter(user__subscriber__site__subscriber_access_enabled=False).values_list("pk", flat=True)[:limit]
    )
    ended = revoke_connections(Connection.objects.filter(pk__in=off).only("pk"), by=SITE_ACCESS_OFF) if off else 0
    if len(off) >= limit:
        return ended
    live_access = TokenBinding.objects.filter(connection=OuterRef("pk"), access_token__expires__gt=now)
    live_refresh = get_refresh_token_model().objects.filter(
        access_token__binding__connection=OuterRef("pk"), revoked__isnull=True
    )
    refresh_life = refresh_token_expire_timedelta()
    if refresh_life:
        live_refresh = live_refresh.filter(access_token__expires__gt=now - refresh_life)
    dead = list(
        held.filter(created_at__lt=now - DEAD_AFTER)
        .filter(Q(subscriber_credential__expires_at__lte=now) | (~Exists(live_access) & ~Exists(live_refresh)))
        .values_list("pk", flat=True)[: limit - len(off)]
    )
    if dead:
        ended += revoke_connections(Connection.objects.filter(pk__in=dead).only("pk"), by=EXPIRED)
    return ended


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
