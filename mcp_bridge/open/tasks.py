"""Celery tasks of the Open server: signing subscribers' Pelcro sign-ins out when their
connection has ended (`open.sign_out`, whose docstring says when each runs).

- `sign_out_connections`: queued by `queue_sign_out` once a revoke of connections holding
  a JWT commits (`accounts.connections.connections_revoked`, connected in
  `McpBridgeConfig.ready`);
- `sweep_sign_ins`: beat (`sweep-open-sign-ins` in CELERY_BEAT_SCHEDULE), every
  OPEN_JWT_SWEEP_SECONDS: ends dead subscriber connections and signs out what is left.

Neither retries through Celery: a JWT whose logout failed stays stored (revoked, unusable)
and the next sweep tries it again, so no failure loses one.
"""

from __future__ import annotations

import logging
from collections import Counter
from functools import partial

from celery import shared_task
from django.conf import settings
from django.db import transaction

from accounts.models import SubscriberCredential
from mcp_bridge.open import sign_out

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def sign_out_connections(connection_ids: list[int]) -> dict[str, int]:
    """Sign out and delete the Pelcro JWTs of these revoked connections, right after their
    revoke (at most OPEN_JWT_SWEEP_BATCH ids per task); returns each outcome's count."""
    outcomes = sign_out.sign_out(connection_ids[: settings.PELCRO_GATEWAY["OPEN_JWT_SWEEP_BATCH"]], background=True)
    return {str(outcome): n for outcome, n in Counter(outcomes.values()).items()}


@shared_task(acks_late=True)
def sweep_sign_ins() -> dict[str, int]:
    """Beat: end the subscriber connections that can no longer be used, then sign out up to
    OPEN_JWT_SWEEP_BATCH revoked connections' Pelcro JWTs (and unredeemed codes'); returns
    what it did."""
    counts = {str(kind): n for kind, n in sign_out.sweep(settings.PELCRO_GATEWAY["OPEN_JWT_SWEEP_BATCH"]).items()}
    if any(counts.values()):
        logger.info("Open sign-in sweep: %s", ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items())))
    return counts


def queue_sign_out(sender, connection_ids: list[int], by: str, **kwargs) -> None:
    """`connections_revoked` receiver: queue `sign_out_connections` for the revoked
    connections that hold a Pelcro JWT, once the revoke has committed (one task per
    OPEN_JWT_SWEEP_BATCH of them). The revoke waits for nothing but handing the message to
    the broker."""
    ids = sign_out.queued_elsewhere(connection_ids)
    if not ids:
        return
    held = sorted(SubscriberCredential.objects.filter(connection_id__in=ids).values_list("connection_id", flat=True))
    batch = settings.PELCRO_GATEWAY["OPEN_JWT_SWEEP_BATCH"]
    for start in range(0, len(held), batch):
        transaction.on_commit(partial(_queue, held[start : start + batch]))


def _queue(connection_ids: list[int]) -> None:
    try:
        # No retry: a broker that is down must not hold up the revoke; the sweep catches up.
        sign_out_connections.apply_async((connection_ids,), retry=False)
    except Exception as failed:  # whatever the broker raised, the revoke has happened
        logger.warning(
            "could not queue the Pelcro sign-out of connection(s) %s (%s); the sweep does it within %g s",
            ", ".join(map(str, connection_ids)),
            type(failed).__name__,
            settings.PELCRO_GATEWAY["OPEN_JWT_SWEEP_SECONDS"],
        )
