"""The Celery app: `celery -A pelcro_gateway worker` / `beat`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pelcro_gateway.settings")

app = Celery("pelcro_gateway")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each installed app's `tasks` module, plus the packages inside mcp_bridge that own tasks.
app.autodiscover_tasks()
app.autodiscover_tasks(["mcp_bridge.exports"])
