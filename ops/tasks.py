"""Celery tasks of the ops app (scheduled by beat, see CELERY_BEAT_SCHEDULE)."""

from ops import rollups
from pelcro_gateway.celery import app


@app.task
def rollup_usage() -> int:
    """Roll the last minutes' per-account usage from Redis into `UsageMinute` rows."""
    return rollups.rollup_usage()
