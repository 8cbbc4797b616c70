"""Celery wiring: the beat schedule names real tasks, the periodic tasks run, and a
rate-limited task is retried with countdown = retry_after."""

import pytest
from celery.exceptions import Retry
from django.conf import settings

from accounts import tasks as accounts_tasks
from mcp_bridge.exports import tasks
from mcp_bridge.exports.tasks import RateLimitedTask
from mcp_bridge.upstream.errors import RateLimited
from ops import tasks as ops_tasks
from pelcro_gateway.celery import app


def test_every_beat_entry_is_a_registered_task():
    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert names == {
        "ops.tasks.rollup_usage",
        "mcp_bridge.exports.tasks.delete_expired_exports",
        "accounts.tasks.clear_expired_tokens",
        "accounts.tasks.prune_unused_registrations",
        "mcp_bridge.core.tasks.refresh_accounts",
        "mcp_bridge.tasks.delete_old_confirmations",
        "mcp_bridge.open.tasks.sweep_sign_ins",
    }
    app.loader.import_default_modules()  # what a worker does at start: autodiscovery included
    assert names <= set(app.tasks) and "mcp_bridge.core.tasks.refresh_account" in app.tasks
    assert "mcp_bridge.open.tasks.sign_out_connections" in app.tasks  # queued by every revoke
    assert settings.CELERY_BEAT_SCHEDULE["rollup-usage"]["schedule"] == 60.0


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["clear_expired_tokens", "prune_unused_registrations", "delete_expired_exports"])
def test_periodic_clean_ups_run(name):
    owner = tasks if name == "delete_expired_exports" else accounts_tasks
    result = getattr(owner, name).apply()
    assert result.successful(), result.traceback
    assert isinstance(result.get(), int)


@pytest.mark.django_db
def test_usage_rollup_task_runs():
    result = ops_tasks.rollup_usage.apply()
    assert result.successful(), result.traceback


def test_rate_limited_task_retries_with_countdown_retry_after():
    @app.task(base=RateLimitedTask, bind=True, name="tests.limited_probe")
    def limited(self):
        raise RateLimited(7.2)

    with pytest.raises(Retry) as caught:
        limited.apply(throw=True)  # eager: the retry is raised, not scheduled
    assert caught.value.when == 8  # whole seconds, rounded up
    assert "retry in 8 s" in str(caught.value.exc)
