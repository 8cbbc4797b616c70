"""Periodic clean-ups for the OAuth tables (Celery beat runs them through accounts.tasks)."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone
from oauth2_provider.models import clear_expired, get_application_model, get_grant_model

from accounts.models import AuthorizationConsent, Connection, RefreshSuccessor

log = logging.getLogger(__name__)

# Consents are kept a day after their code was issued: long enough to recognise a
# replayed code (codes live 60 s), short enough not to accumulate.
CONSENT_RETENTION = timedelta(days=1)


def prune_unused_registrations() -> int:
    """Delete self-registered clients (DCR or CIMD) older than DCR_UNUSED_PRUNE_HOURS that
    never completed a connection and hold no pending authorization code. Returns how many."""
    Application = get_application_model()
    cutoff = timezone.now() - timedelta(hours=settings.PELCRO_GATEWAY["DCR_UNUSED_PRUNE_HOURS"])
    unused = (
        Application.objects.filter(
            registration_source__in=[Application.RegistrationSource.DCR, Application.RegistrationSource.CIMD],
            created__lt=cutoff,
        )
        .exclude(Exists(Connection.objects.filter(application=OuterRef("pk"))))
        .exclude(Exists(get_grant_model().objects.filter(application=OuterRef("pk"))))
    )
    count = 0
    for application in unused.iterator():  # delete() per row so cascades run for each
        application.delete()
        count += 1
    if count:
        log.info("pruned %d never-used client registrations", count)
    return count


def clear_expired_tokens() -> int:
    """Delete expired tokens and codes (DOT's `cleartokens`), old consent records and rotated
    pairs past their grace window. Returns how many consent records were deleted (DOT logs
    its own counts). A subscriber's Pelcro JWT kept with a code never redeemed
    (`ConsentCredential`) is signed out at Pelcro and deleted by the Open sign-in sweep
    (`mcp_bridge.open.sign_out`) once the code has expired; one still left when its consent
    goes (CONSENT_RETENTION, Pelcro unreachable all that time) goes with it."""
    clear_expired()
    grace = timedelta(seconds=settings.PELCRO_GATEWAY["REFRESH_TOKEN_GRACE_SECONDS"])
    RefreshSuccessor.objects.filter(created_at__lt=timezone.now() - grace).delete()
    deleted, _ = AuthorizationConsent.objects.filter(created_at__lt=timezone.now() - CONSENT_RETENTION).delete()
    return deleted
