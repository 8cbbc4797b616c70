"""The Celery app: `celery -A pelcro_gateway worker` / `beat`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pelcro_gateway.settings")

app = Celery("pelcro_gateway")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
