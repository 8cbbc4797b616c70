"""Pelcro MCP Gateway: Django project package (settings, URLs, ASGI router, Celery app)."""

__version__ = "1.0.0"
