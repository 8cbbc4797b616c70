"""System checks that refuse an unsafe production configuration.

They run on every `manage.py` command and when the ASGI app starts (asgi.py calls
`run_startup_checks`), so a misconfigured `prd` deployment never serves a request.
"""

import os
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=False)
def check_production_safety(app_configs=None, **kwargs):
    errors = []
    env = settings.GATEWAY_ENV
    if env not in {"prd", "stg", "dev"}:
        errors.append(Error(f"GATEWAY_ENV must be prd, stg or dev, not {env!r}.", id="pelcro_gateway.E001"))
    for key in settings.API_KEY_ENCRYPTION_KEYS:
        try:
            Fernet(key)
        except Exception:
            errors.append(
                Error(
                    "API_KEY_ENCRYPTION_KEYS holds a value that is not a Fernet key.",
                    hint='Generate one: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"',
                    id="pelcro_gateway.E002",
                )
            )
    if urlsplit(settings.REDIS_URL).scheme not in ("redis", "rediss"):
        errors.append(
            Error(
                "REDIS_URL must be a redis:// or rediss:// (TLS) URL.",
                hint="For a Redis Cluster, name one node and set REDIS_CLUSTER=1.",
                id="pelcro_gateway.E003",
            )
        )
    if settings.REDIS_CLUSTER and settings.REDIS_URL in (settings.CELERY_BROKER_URL, settings.CELERY_RESULT_BACKEND):
        errors.append(
            Error(
                "Celery cannot use a Redis Cluster (kombu has no cluster transport), and REDIS_CLUSTER is on.",
                hint="Set CELERY_BROKER_URL and CELERY_RESULT_BACKEND to a single (non-cluster) Redis.",
                id="pelcro_gateway.E006",
            )
        )
    errors.extend(check_ranges(settings.PELCRO_GATEWAY))
    auth_cache = settings.PELCRO_GATEWAY["AUTH_CACHE_SECONDS"]
    if not 0 <= auth_cache <= 300:
        errors.append(Error("AUTH_CACHE_SECONDS must be between 0 and 300.", id="pelcro_gateway.E004"))
    if "BEHIND_PROXY" in os.environ:
        errors.append(
            Error(
                "BEHIND_PROXY is no longer read: it trusted X-Forwarded-Proto from any client.",
                hint="Set FORWARDED_ALLOW_IPS to the addresses of your proxies (uvicorn then takes the scheme "
                "and client address from them only), and remove BEHIND_PROXY.",
                id="pelcro_gateway.E005",
            )
        )
    if env == "dev":
        return errors
    if "FORWARDED_ALLOW_IPS" not in os.environ:
        errors.append(
            Error(
                "FORWARDED_ALLOW_IPS is not set: uvicorn would then trust X-Forwarded-For from 127.0.0.1, "
                "letting a local client choose the address per-IP limits count.",
                hint="Set it to the addresses of your reverse proxies, or to an empty value when clients "
                "connect directly (the Procfile, Dockerfile and docker-compose.yml default to empty).",
                id="pelcro_gateway.E015",
            )
        )
    elif "*" in os.environ["FORWARDED_ALLOW_IPS"].replace(" ", "").split(","):
        # "*" is what BEHIND_PROXY did (E005): any client could choose its address and scheme.
        errors.append(
            Error(
                "FORWARDED_ALLOW_IPS is '*': uvicorn would believe X-Forwarded-For / X-Forwarded-Proto from any "
                "client, letting it choose the address per-IP limits count.",
                hint="List your reverse proxies' addresses or networks (e.g. 10.0.0.0/8), or leave it empty when "
                "clients connect directly.",
                id="pelcro_gateway.E015",
            )
        )
    if settings.DEBUG:
        errors.append(Error(f"DEBUG must be off when GATEWAY_ENV={env}.", id="pelcro_gateway.E010"))
    if settings.SECRET_KEY == settings.DEV_SECRET_KEY or len(settings.SECRET_KEY) < 32:
        errors.append(Error("SECRET_KEY is the dev default or shorter than 32 characters.", id="pelcro_gateway.E011"))
    if settings.DEV_ENCRYPTION_KEY in settings.API_KEY_ENCRYPTION_KEYS:
        errors.append(Error("API_KEY_ENCRYPTION_KEYS still contains the dev default key.", id="pelcro_gateway.E012"))
    if urlsplit(settings.PUBLIC_URL).scheme != "https":
        errors.append(Error(f"PUBLIC_URL must be https when GATEWAY_ENV={env}.", id="pelcro_gateway.E013"))
    if not (settings.SESSION_COOKIE_SECURE and settings.CSRF_COOKIE_SECURE):
        errors.append(Error("Session and CSRF cookies must be Secure outside dev.", id="pelcro_gateway.E014"))
    if len(settings.PELCRO_GATEWAY["METRICS_TOKEN"].strip()) < 32:
        # Set but guessable ("changeme") is as open as unset: the same bar as SECRET_KEY.
        errors.append(
            Error(
                f"METRICS_TOKEN must be set, 32 characters or more, when GATEWAY_ENV={env}: "
                "/metrics lists every account's live usage.",
                hint='Generate one: python -c "import secrets; print(secrets.token_urlsafe(32))"; give it to the '
                "Prometheus scrape job as its bearer token.",
                id="pelcro_gateway.E016",
            )
        )
    return errors


# Each numeric knob's allowed range: (lowest, highest, lowest allowed itself). A value of the
# right type but out of range (a zero window, a negative timeout) would otherwise start a
# gateway that fails on its first call, or never limits, or never times out.
RANGES = {
    "CORE_API_TIMEOUT": (0, None, False),
    "CORE_API_CONNECT_TIMEOUT": (0, None, False),
    "CORE_API_MAX_RETRIES": (0, None, True),
    "CORE_API_BACKOFF_BASE": (0, None, True),
    "CORE_API_BACKOFF_MAX": (0, None, True),
    "OPEN_JWT_REFRESH_BEFORE_SECONDS": (0, None, True),
    "OPEN_JWT_SWEEP_SECONDS": (0, None, False),
    "OPEN_JWT_SWEEP_BATCH": (1, None, True),
    "RATE_LIMIT": (1, None, True),
    "OPEN_SITE_RATE_LIMIT": (1, None, True),
    "OPEN_SUBSCRIBER_RATE_LIMIT": (1, None, True),
    "OPEN_SITE_CACHE_SECONDS": (0, None, True),
    "RATE_WINDOW_SECONDS": (0, None, False),
    "RATE_SAFETY_MARGIN": (0, None, True),
    "RATE_WAIT_BUDGET_SECONDS": (0, None, True),
    "BACKGROUND_BUDGET_SHARE": (0, 1, False),
    "RATE_REDIS_TIMEOUT_SECONDS": (0, None, False),
    "USAGE_RETENTION_DAYS": (1, None, True),
    "ACCESS_TOKEN_SECONDS": (1, None, True),
    "REFRESH_TOKEN_SECONDS": (1, None, True),
    "REFRESH_TOKEN_GRACE_SECONDS": (0, None, True),
    "LOGIN_MAX_FAILURES": (1, None, True),
    "LOGIN_LOCKOUT_SECONDS": (0, None, True),
    "LOGIN_MAX_FAILURES_PER_IP": (1, None, True),
    "DCR_PER_IP_PER_HOUR": (0, None, True),
    "DCR_UNUSED_PRUNE_HOURS": (1, None, True),
    "CONFIRMATION_SECONDS": (1, 86400, True),  # a day at most: a confirmation is for the call at hand
    "EXPORT_RETENTION_HOURS": (1, None, True),
    "EXPORT_PAGE_SIZE": (1, 100, True),  # the Core API's page size is at most 100
}


def check_ranges(conf: dict) -> list[Error]:
    """E017: every numeric knob of `settings.PELCRO_GATEWAY` within its range (`RANGES`),
    and the safety margin below the limit; each error names the variable and the range."""
    errors = []
    for name, (lowest, highest, inclusive) in RANGES.items():
        value = conf[name]
        low_ok = value >= lowest if inclusive else value > lowest
        if low_ok and (highest is None or value <= highest):
            continue
        wanted = f"{'at least' if inclusive else 'above'} {lowest}" + (
            f" and at most {highest}" if highest is not None else ""
        )
        errors.append(Error(f"{name}={value!r} is out of range: it must be {wanted}.", id="pelcro_gateway.E017"))
    if conf["RATE_LIMIT"] >= 1 and conf["RATE_SAFETY_MARGIN"] >= conf["RATE_LIMIT"]:
        errors.append(
            Error(
                f"RATE_SAFETY_MARGIN={conf['RATE_SAFETY_MARGIN']} must be below RATE_LIMIT={conf['RATE_LIMIT']}: "
                "the limiter grants RATE_LIMIT - RATE_SAFETY_MARGIN requests per window.",
                id="pelcro_gateway.E017",
            )
        )
    return errors


def run_startup_checks() -> None:
    """Raise SystemCheckError if any registered check fails (used by the ASGI app)."""
    from django.core import checks
    from django.core.management.base import SystemCheckError

    failures = [m for m in checks.run_checks(include_deployment_checks=False) if m.is_serious()]
    if failures:
        raise SystemCheckError("\n".join(f"{m.id}: {m.msg}" for m in failures))
