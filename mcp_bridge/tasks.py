"""Celery tasks of the MCP side's own records (beat, CELERY_BEAT_SCHEDULE in settings):
deleting confirmations long expired. (Exports and Core API reads have their own tasks in
`exports/` and `core/`.)"""

from celery import shared_task

from mcp_bridge.runtime import confirmation


@shared_task
def delete_old_confirmations() -> int:
    """Delete confirmations that expired more than a day ago; returns how many."""
    return confirmation.delete_old()
