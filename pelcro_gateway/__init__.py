"""Pelcro MCP Gateway: Django project package (settings, URLs, ASGI router, Celery app)."""

__version__ = "1.0.0"

# The Celery app is made current on import, so `@shared_task` tasks bind to it in every
# process (web, worker, beat), as Celery's Django guide does.
from pelcro_gateway.celery import app as celery_app  # noqa: E402

__all__ = ["celery_app"]
