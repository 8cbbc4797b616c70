"""Celery tasks of the exports: run one export, delete expired files (beat).

`RateLimitedTask` is the base for tasks that call the Core API: when the shared limiter
answers "retry in N s" (or the upstream said 429), the task is retried by Celery with
countdown N instead of blocking a worker.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task

from mcp_bridge.exports import jobs as exports
from mcp_bridge.upstream.errors import RateLimited, RateLimiterUnavailable

logger = logging.getLogger(__name__)

# Redis down: the limiter fails closed; try again after this many seconds.
LIMITER_DOWN_RETRY_SECONDS = 10


class RateLimitedTask(Task):
    """A task that calls the Core API: rate-limit refusals become Celery retries."""

    max_retries = 200  # an export of a large site may be refused many times; each waits

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except RateLimited as exc:
            raise self.retry(exc=exc, countdown=exc.retry_after) from None
        except RateLimiterUnavailable as exc:
            raise self.retry(exc=exc, countdown=LIMITER_DOWN_RETRY_SECONDS) from None


# The name from before the move into exports/: export messages already queued still run.
@shared_task(name="mcp_bridge.tasks.run_export", base=RateLimitedTask, bind=True, acks_late=True)
def run_export(self, job_id: str) -> str:
    """Run (or resume) one CSV export; returns its final status."""
    try:
        return exports.run_export(job_id).status
    except (RateLimited, RateLimiterUnavailable):
        if self.request.retries >= self.max_retries:
            exports.fail_export(job_id, "gave up: the account's rate limit stayed exhausted")
        raise


@shared_task
def delete_expired_exports() -> int:
    """Delete export files past EXPORT_RETENTION_HOURS."""
    return exports.delete_expired_exports()
