"""System checks that refuse an unsafe production configuration.

They run on every `manage.py` command and when the ASGI app starts (asgi.py calls
`run_startup_checks`), so a misconfigured `prd` deployment never serves a request.
"""

import ipaddress
import logging
import os
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.http.request import validate_host


@register(Tags.security, deploy=False)
def check_production_safety(app_configs=None, **kwargs):
    errors = []
    env = settings.GATEWAY_ENV
    if env not in {"prd", "stg", "dev"}:
        errors.append(Error(f"GATEWAY_ENV must be prd, stg or dev, not {env!r}.", id="pelcro_gateway.E001"))
    if not settings.API_KEY_ENCRYPTION_KEYS:
        # Only commas or blanks (env_list drops empty items): nothing could be encrypted.
        errors.append(
            Error(
                "API_KEY_ENCRYPTION_KEYS holds no key: Core API keys and subscribers' Pelcro JWTs could "
                "be neither stored nor read.",
                hint=GENERATE_FERNET_KEY,
                id="pelcro_gateway.E002",
            )
        )
    for key in settings.API_KEY_ENCRYPTION_KEYS:
        try:
            Fernet(key)
        except Exception:
            errors.append(
                Error(
                    "API_KEY_ENCRYPTION_KEYS holds a value that is not a Fernet key.",
                    hint=GENERATE_FERNET_KEY,
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
    if weakness := secret_weakness(settings.SECRET_KEY, dev_default=settings.DEV_SECRET_KEY):
        errors.append(
            Error(
                f"SECRET_KEY {weakness} when GATEWAY_ENV={env}: it signs sessions and CSRF tokens.",
                hint=f"Generate one: {GENERATE_SECRET}",
                id="pelcro_gateway.E011",
            )
        )
    if settings.DEV_ENCRYPTION_KEY in settings.API_KEY_ENCRYPTION_KEYS:
        errors.append(Error("API_KEY_ENCRYPTION_KEYS still contains the dev default key.", id="pelcro_gateway.E012"))
    public = urlsplit(settings.PUBLIC_URL)
    if public.scheme != "https" or not public.hostname:
        errors.append(
            Error(
                f"PUBLIC_URL must be an https URL with a host name when GATEWAY_ENV={env}, "
                f"not {settings.PUBLIC_URL!r}.",
                hint="Set it to the https origin clients use, e.g. PUBLIC_URL=https://mcp.example.com.",
                id="pelcro_gateway.E013",
            )
        )
    if not (settings.SESSION_COOKIE_SECURE and settings.CSRF_COOKIE_SECURE):
        errors.append(Error("Session and CSRF cookies must be Secure outside dev.", id="pelcro_gateway.E014"))
    if weakness := secret_weakness(settings.PELCRO_GATEWAY["METRICS_TOKEN"].strip()):
        # Set but guessable ("changeme") is as open as unset: the same bar as SECRET_KEY.
        errors.append(
            Error(
                f"METRICS_TOKEN {weakness} when GATEWAY_ENV={env}: it must be set, 32 characters or more, "
                "as /metrics lists every account's live usage.",
                hint=f"Generate one: {GENERATE_SECRET}; give it to the Prometheus scrape job as its bearer token.",
                id="pelcro_gateway.E016",
            )
        )
    errors.extend(check_allowed_hosts(settings.ALLOWED_HOSTS, settings.PUBLIC_URL, env))
    errors.extend(check_hsts(settings.SECURE_HSTS_SECONDS, env))
    errors.extend(check_upstreams(settings.PELCRO_GATEWAY, env))
    return errors


GENERATE_FERNET_KEY = (
    'Generate one: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)
GENERATE_SECRET = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'
SECRET_MIN_LENGTH = 32
SECRET_MIN_DISTINCT = 5  # Django's own bar (check security.W009)


def secret_weakness(secret: str, *, dev_default: str | None = None) -> str | None:
    """Why `secret` is guessable, as the end of a sentence ("is empty"), or None if it is not:
    empty, the dev default, shorter than 32 characters, fewer than 5 distinct characters
    (Django's security.W009 bar: "xxxx…" is as long as it is guessable), or a key Django's
    startproject marked `django-insecure-`."""
    if not secret:
        return "is empty"
    if secret == dev_default:
        return "is the dev default"
    if len(secret) < SECRET_MIN_LENGTH:
        return f"is shorter than {SECRET_MIN_LENGTH} characters ({len(secret)})"
    if len(set(secret)) < SECRET_MIN_DISTINCT:
        return f"has fewer than {SECRET_MIN_DISTINCT} distinct characters"
    if secret.startswith("django-insecure-"):
        return "is a key Django generated as insecure ('django-insecure-…')"
    return None


def check_allowed_hosts(hosts: list[str], public_url: str, env: str) -> list[Error]:
    """E018 (outside dev): `ALLOWED_HOSTS` names this deployment's hosts and nothing wider.

    Refused: an empty list (every request would get a 400); a pattern that lets any Host
    through: `*`, an empty or blank entry, a leading-dot pattern over a whole top-level
    domain or more (`.`, `.com`: Django's `validate_host` matches every host under it); and
    a list that does not cover PUBLIC_URL's host (every request through it would get a 400).
    Host checking is what stops DNS rebinding against the MCP endpoint (MCP transport spec,
    "Security Warning"; mcp_bridge.edge.gates.OriginGate) and links built from a forged Host.
    Each error's hint names the value to set: PUBLIC_URL's host."""
    public_host = urlsplit(public_url).hostname or ""
    hint = (
        f"Set ALLOWED_HOSTS to the public host of PUBLIC_URL ({public_host}), plus any name your proxy "
        f"or health checks use, e.g. ALLOWED_HOSTS={public_host},127.0.0.1"
        if public_host
        else "Set ALLOWED_HOSTS to the public host of PUBLIC_URL (e.g. mcp.example.com)."
    )
    if not hosts:
        return [
            Error(
                f"ALLOWED_HOSTS is empty when GATEWAY_ENV={env}: every request would be refused (400).",
                hint=hint,
                id="pelcro_gateway.E018",
            )
        ]
    wide = [host for host in hosts if host.strip() in ("", "*") or (host.startswith(".") and "." not in host[1:])]
    if wide:
        return [
            Error(
                f"ALLOWED_HOSTS holds {', '.join(repr(host) for host in wide)} when GATEWAY_ENV={env}: a pattern "
                "that lets any Host header through (DNS rebinding against the MCP endpoint, links built "
                "from a forged Host).",
                hint=hint,
                id="pelcro_gateway.E018",
            )
        ]
    if public_host and not validate_host(public_host, hosts):
        return [
            Error(
                f"ALLOWED_HOSTS ({','.join(hosts)}) does not cover PUBLIC_URL's host {public_host!r}: every "
                "request through it would be refused (400).",
                hint=hint,
                id="pelcro_gateway.E018",
            )
        ]
    return []


HSTS_MIN_SECONDS = 86400  # a day


def check_hsts(seconds: int, env: str) -> list[Error]:
    """E019 (outside dev): `SECURE_HSTS_SECONDS` (the Strict-Transport-Security max-age, in
    seconds) is at least a day (86400).

    Below that, a browser forgets within hours that this host is https-only (RFC 6797 §11.2),
    and its next visit is again open to a TLS-stripping network attacker (§14.6). An error, not a warning:
    outside dev PUBLIC_URL must be https (E013), so there is no http deployment a short or
    zero max-age would keep reachable, and `max-age=0` (RFC 6797 §6.1.1: forget this host) is
    the step for moving a host off https, which a prd or stg gateway cannot do."""
    if seconds >= HSTS_MIN_SECONDS:
        return []
    return [
        Error(
            f"SECURE_HSTS_SECONDS={seconds} is below a day ({HSTS_MIN_SECONDS}) when GATEWAY_ENV={env}: "
            "browsers would soon forget that this host is https-only, letting a network attacker strip "
            "TLS from a later visit.",
            hint="Unset it (one year, 31536000, the default) or set 86400 or more; to roll HSTS out "
            "carefully, start at 86400 and raise it.",
            id="pelcro_gateway.E019",
        )
    ]


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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_upstreams(conf: dict, env: str) -> list[Warning]:
    """W001 (outside dev): CORE_API_BASE_URL and OPEN_API_BASE_URL over plain http to a host
    that is not loopback: every Core API call would carry the account's API key, and every
    Open API call a subscriber's Pelcro JWT, in clear text (Pelcro's APIs are https:
    docs/CORE_API.md). A warning, not an error: a staging instance may run against the
    sandbox service (docker-compose's `http://sandbox:8100`, SEED_DEMO=1), whose keys are
    throw-away; loopback (a local sandbox or TLS sidecar) is not warned about."""
    warnings = []
    for name in ("CORE_API_BASE_URL", "OPEN_API_BASE_URL"):
        url = urlsplit(conf[name])
        if url.scheme == "http" and not _is_loopback(url.hostname or ""):
            warnings.append(
                Warning(
                    f"{name}={conf[name]} is plain http when GATEWAY_ENV={env}: API keys and subscribers' "
                    "Pelcro JWTs would cross the network in clear text.",
                    hint="Use Pelcro's https URL (README's settings table), or a TLS sidecar on loopback.",
                    id="pelcro_gateway.W001",
                )
            )
    return warnings


logger = logging.getLogger(__name__)


def run_startup_checks() -> None:
    """Raise SystemCheckError if any registered check fails (used by the ASGI app); its
    message has a line per failure: "<id>: <what is wrong> HINT: <what to set instead>".
    Warnings (e.g. W001) are logged and the start goes on."""
    from django.core import checks
    from django.core.management.base import SystemCheckError

    messages = checks.run_checks(include_deployment_checks=False)
    for message in messages:
        if not message.is_serious() and not message.is_silenced():
            logger.warning("%s: %s%s", message.id, message.msg, f" HINT: {message.hint}" if message.hint else "")
    failures = [m for m in messages if m.is_serious()]
    if failures:
        raise SystemCheckError("\n".join(f"{m.id}: {m.msg}" + (f" HINT: {m.hint}" if m.hint else "") for m in failures))
