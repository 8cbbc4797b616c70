"""The Celery app: `celery -A pelcro_gateway worker` / `beat`."""

import os

from celery import Celery
from celery.signals import beat_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pelcro_gateway.settings")

app = Celery("pelcro_gateway")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each installed app's `tasks` module, plus the packages inside mcp_bridge that own tasks.
app.autodiscover_tasks()
app.autodiscover_tasks(["mcp_bridge.exports", "mcp_bridge.core", "mcp_bridge.open"])


@beat_init.connect
def read_accounts_when_beat_starts(sender, **kwargs) -> None:
    """Accounts' rate limits and sites come from Pelcro (GET /account): read them at once,
    not only after the first ACCOUNT_REFRESH_SECONDS."""
    sender.app.send_task("mcp_bridge.core.tasks.refresh_accounts")
