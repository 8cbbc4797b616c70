"""Celery tasks of the accounts app: the periodic OAuth clean-ups beat runs
(CELERY_BEAT_SCHEDULE in settings)."""

from celery import shared_task

from accounts import maintenance


@shared_task
def clear_expired_tokens() -> int:
    """Delete expired OAuth tokens, codes and old consent records."""
    return maintenance.clear_expired_tokens()


@shared_task
def prune_unused_registrations() -> int:
    """Delete self-registered clients that never completed a connection."""
    return maintenance.prune_unused_registrations()
