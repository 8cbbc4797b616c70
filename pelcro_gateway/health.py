"""Liveness (`/health`) and readiness (`/health/ready`) endpoints."""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.redis_client import redis_client


@require_GET
@never_cache
def health(request):
    """Liveness: the process answers. The shape is Pelcro's published one, exactly."""
    return JsonResponse({"status": "ok", "version": settings.VERSION, "environment": settings.GATEWAY_ENV})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not ready"
        return type(exc).__name__
    return None


def _check_redis() -> str | None:
    try:
        redis_client().ping()
    except Exception as exc:  # any client error means "not ready"
        return type(exc).__name__
    return None


@require_GET
@never_cache
def ready(request):
    """Readiness: the DB and Redis answer. 503 names each dependency that failed."""
    checks = {"database": _check_database(), "redis": _check_redis()}
    failed = {name: error for name, error in checks.items() if error}
    body = {
        "status": "fail" if failed else "ok",
        "version": settings.VERSION,
        "environment": settings.GATEWAY_ENV,
        "checks": {name: ("fail: " + failed[name]) if name in failed else "ok" for name in checks},
    }
    if failed:
        body["failed"] = sorted(failed)
    return JsonResponse(body, status=503 if failed else 200)
