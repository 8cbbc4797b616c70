"""Celery tasks of the ops app (scheduled by beat, see CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from ops import rollups


@shared_task
def rollup_usage() -> int:
    """Roll the last minutes' per-account usage from Redis into `UsageMinute` rows."""
    return rollups.rollup_usage()
