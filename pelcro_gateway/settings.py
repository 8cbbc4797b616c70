"""Django settings. Every value comes from the environment; defaults are safe for dev.

Production (`GATEWAY_ENV=prd`) must set SECRET_KEY, API_KEY_ENCRYPTION_KEYS, METRICS_TOKEN,
FORWARDED_ALLOW_IPS and an https PUBLIC_URL (with ALLOWED_HOSTS, if set, covering its host and
no wildcard): the system checks in `pelcro_gateway/checks.py` refuse to start otherwise.
"""

import logging
import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from pelcro_gateway import __version__

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


# Typed reads with django-environ. An unset or empty variable takes its default; a value
# that is not of the variable's type stops the start with ImproperlyConfigured naming the
# variable and what it expects (Django reports it before serving anything).
env = environ.Env()
FALSE_STRINGS = ("0", "false", "off", "no", "n")


def _typed(name: str, default, read, expected: str):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return read(name)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not {expected}; fix or unset it") from None


def _strict_bool(name: str) -> bool:
    if os.environ[name].strip().lower() not in environ.Env.BOOLEAN_TRUE_STRINGS + FALSE_STRINGS:
        raise ValueError(name)
    return env.bool(name)


def env_bool(name: str, default: bool) -> bool:
    words = ", ".join(environ.Env.BOOLEAN_TRUE_STRINGS + FALSE_STRINGS)
    return _typed(name, default, _strict_bool, f"a boolean (one of {words})")


def env_int(name: str, default: int) -> int:
    return _typed(name, default, env.int, "an integer")


def env_float(name: str, default: float) -> float:
    return _typed(name, default, env.float, "a number")


def env_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list; blanks around items and empty items are dropped."""
    items = _typed(name, default, env.list, "a comma-separated list")
    return [item.strip() for item in items if item.strip()]


# --- Identity of this deployment -------------------------------------------------------

VERSION = __version__
GATEWAY_ENV = os.environ.get("GATEWAY_ENV", "dev")  # prd | stg | dev
IS_DEV = GATEWAY_ENV == "dev"

# Known-insecure defaults; checks.py refuses them outside dev.
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"
DEV_ENCRYPTION_KEY = "ZGV2LWluc2VjdXJlLWVuY3J5cHRpb24ta2V5LTMyYic="  # Fernet key, dev only

SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
DEBUG = env_bool("DEBUG", IS_DEV)

# The public origin clients use (issuer, resource, redirects). No trailing slash.
PUBLIC_URL = os.environ.get("PUBLIC_URL", f"http://127.0.0.1:{env_int('PORT', 8000)}").rstrip("/")
_public = urlsplit(PUBLIC_URL)
# The MCP resource identifier (RFC 8707 / RFC 9728): the endpoint at "/".
MCP_RESOURCE_URL = PUBLIC_URL + "/"
# The Open server's resource (RFC 8707/9728): acts for one signed-in subscriber (issue 14).
OPEN_RESOURCE_URL = PUBLIC_URL + "/open"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [_public.hostname or "127.0.0.1", "127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [PUBLIC_URL])

# --- Apps --------------------------------------------------------------------------------

INSTALLED_APPS = [
    "pelcro_gateway.admin_site.GatewayAdminConfig",  # django.contrib.admin, branded and trimmed
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "oauth2_provider",
    "csp",  # django-csp: its system checks flag a policy written in the pre-4.0 format
    "pelcro_gateway.apps.GatewayConfig",
    "accounts",
    "mcp_bridge",
    "ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",  # CONTENT_SECURITY_POLICY below
    "pelcro_gateway.middleware.SecurityHeadersMiddleware",
    "pelcro_gateway.middleware.RefuseNulMiddleware",
]

ROOT_URLCONF = "pelcro_gateway.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "pelcro_gateway.context_processors.deployment",
            ],
        },
    },
]

# --- Data --------------------------------------------------------------------------------

DEFAULT_SQLITE_URL = f"sqlite:///{VAR_DIR / 'gateway.sqlite3'}"
try:
    DATABASES = {
        "default": dj_database_url.parse(
            os.environ.get("DATABASE_URL", DEFAULT_SQLITE_URL),
            conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
        )
    }
except (ValueError, dj_database_url.UnknownSchemeError) as error:  # the library's message does not name the variable
    raise ImproperlyConfigured(
        f"DATABASE_URL is not a database URL ({error}); use postgres://user:password@host:5432/name or sqlite:///path"
    ) from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the web process, the worker and beat share one file.
    # IMMEDIATE: a transaction takes the write lock when it begins (waiting up to
    # `timeout`), instead of failing with "database is locked" when a transaction that
    # has read tries to write after another writer committed (e.g. two refreshes of one
    # token: accounts.rotation; a revocation while tool calls record their use).
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Tests run servers in subprocesses, so the test database must be a file, not :memory:.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
else:
    # A per-run test database name, so two test runs on one server never collide.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
    # DB_POOL_SIZE > 0: psycopg's connection pool, so a page or OAuth request takes an open
    # connection instead of opening one (the MCP path keeps its own: mcp_bridge/orm.py,
    # mcp_bridge/audit/writer.py). Django's persistent connections (DB_CONN_MAX_AGE) are
    # not meant for ASGI servers.
    if env_int("DB_POOL_SIZE", 0) > 0:
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": env_int("DB_POOL_SIZE", 0),
            "timeout": 5.0,  # waiting for a connection longer than this is an outage: fail
        }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# REDIS_URL names one node of a Redis Cluster (the limiter, auth epoch and counters then
# use redis-py's cluster client). Celery cannot use a cluster: give it CELERY_BROKER_URL.
REDIS_CLUSTER = env_bool("REDIS_CLUSTER", False)
# Every Redis key the gateway writes starts with this, so several deployments (or test
# runs) can share one Redis without touching each other's keys.
REDIS_KEY_PREFIX = os.environ.get("REDIS_KEY_PREFIX", "pgw:")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX + "cache",
        "TIMEOUT": 300,
    }
    # Django's Redis cache speaks to one Redis only; nothing the gateway shares between
    # processes lives in Django's cache, so on a cluster each process keeps its own.
    if not REDIS_CLUSTER
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# --- Secrets at rest ---------------------------------------------------------------------

# Comma-separated Fernet keys: the first encrypts, all decrypt (rotation: put the new key
# first, run `manage.py rotate_api_keys`, then drop the old one).
API_KEY_ENCRYPTION_KEYS = env_list("API_KEY_ENCRYPTION_KEYS", [DEV_ENCRYPTION_KEY])

# --- Auth and sessions -------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# The one sign-in path for every form that takes a password (lock-out: accounts/sign_in.py).
AUTHENTICATION_BACKENDS = ["accounts.sign_in.SignInBackend"]
LOGIN_URL = "/login"
LOGIN_REDIRECT_URL = "/connections"
LOGOUT_REDIRECT_URL = "/login"

SECURE_COOKIES = env_bool("SECURE_COOKIES", _public.scheme == "https")
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 60 * 60 * 12
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Every Django response's Content-Security-Policy (django-csp 4.x, csp.middleware.CSPMiddleware;
# CSP Level 3). The MCP endpoint is not Django (asgi.py) and sends none. Views narrow a
# directive per response: the consent page's form-action (accounts/views/consent.py).
# With DEBUG on (dev only: pelcro_gateway.E010 refuses it elsewhere) django-csp leaves 404
# and 500 responses without the header, so Django's debug pages keep their inline script.
# - style-src 'unsafe-inline': inline style="" attributes, e.g. the ops dashboard's meter
#   width (templates/ops/dashboard.html); scripts stay 'self' only, no inline code.
# - form-action: the broad list every page has had since the foundation commit, kept as it
#   was when django-csp replaced the hand-made header (issue 11 item 6); the consent page,
#   the one form that leads to an app, sends a narrower one.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "img-src": [SELF, "data:"],
        "style-src": [SELF, UNSAFE_INLINE],
        "script-src": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF, "http:", "https:", "cursor:", "vscode:", "windsurf:"],
        "base-uri": [NONE],
        "object-src": [NONE],
    },
}
# Behind a TLS-terminating proxy, uvicorn takes the scheme (X-Forwarded-Proto) and the client
# address (X-Forwarded-For) from the proxies listed in FORWARDED_ALLOW_IPS and from nobody
# else; Django reads both from the ASGI scope, so it needs no proxy header of its own.
SECURE_PROXY_SSL_HEADER = None
# Outside dev at least a day (pelcro_gateway.E019).
SECURE_HSTS_SECONDS = 0 if IS_DEV else env_int("SECURE_HSTS_SECONDS", 31536000)

# --- Static files ------------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True  # serve from app dirs without collectstatic in dev and tests

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- REST framework (ops JSON API) -------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}

# --- The gateway's own knobs -------------------------------------------------------------

PELCRO_GATEWAY = {
    # Upstream Core API (defaults to the embedded sandbox started by `make run`).
    "CORE_API_BASE_URL": os.environ.get("CORE_API_BASE_URL", "http://127.0.0.1:8100/api/v1/core").rstrip("/"),
    "CORE_API_TIMEOUT": env_float("CORE_API_TIMEOUT", 10.0),
    "CORE_API_CONNECT_TIMEOUT": env_float("CORE_API_CONNECT_TIMEOUT", 3.0),
    "CORE_API_MAX_RETRIES": env_int("CORE_API_MAX_RETRIES", 2),
    "CORE_API_BACKOFF_BASE": env_float("CORE_API_BACKOFF_BASE", 0.2),
    "CORE_API_BACKOFF_MAX": env_float("CORE_API_BACKOFF_MAX", 5.0),
    # Upstream Open API (docs/OPEN_API.md; the /open server's upstream), same timeouts and retries.
    "OPEN_API_BASE_URL": os.environ.get("OPEN_API_BASE_URL", "http://127.0.0.1:8100/api/v1/sdk").rstrip("/"),
    # Refresh a subscriber's Pelcro JWT when less than this is left (or half its lifetime,
    # if shorter): Pelcro's JWTs live 60 days by default, 1 day at the least (OPEN_API.md §2).
    "OPEN_JWT_REFRESH_BEFORE_SECONDS": env_int("OPEN_JWT_REFRESH_BEFORE_SECONDS", 86400),
    # A subscriber's Pelcro JWT is signed out (and deleted) right after its connection is
    # revoked, by a task queued on commit; beat's sweep does what that missed (queue or
    # Pelcro down, limiter refusals, bulk site switches) and ends dead connections. An idle
    # run is two indexed queries, so every 5 minutes costs nothing and keeps a missed JWT
    # valid at Pelcro minutes, not the weeks it has left (60 days by default).
    "OPEN_JWT_SWEEP_SECONDS": env_float("OPEN_JWT_SWEEP_SECONDS", 300.0),
    # Logouts per sweep run (and per queued task), on the account's background share: 50 in
    # 5 minutes is far inside it (60 a minute at the default limit), and a run ends within
    # about a minute even with Pelcro timing out (4 at a time, 5 s each).
    "OPEN_JWT_SWEEP_BATCH": env_int("OPEN_JWT_SWEEP_BATCH", 50),
    # Shared per-account limit (Core API: 120 per minute per account).
    "RATE_LIMIT": env_int("RATE_LIMIT", 120),
    # The Open server's calls, inside their account's limit, per RATE_WINDOW_SECONDS: all
    # subscribers of one site together (half the default account limit, so a site's
    # subscribers never take the staff's tools' whole budget), and one subscriber (a third
    # of the site's: a person's assistant makes a few calls per request; a runaway client
    # stops there and leaves the site's other subscribers the rest).
    "OPEN_SITE_RATE_LIMIT": env_int("OPEN_SITE_RATE_LIMIT", 60),
    "OPEN_SUBSCRIBER_RATE_LIMIT": env_int("OPEN_SUBSCRIBER_RATE_LIMIT", 20),
    # How long the Open tools keep a site's configuration (GET /site) for their previews:
    # Pelcro's own edge cache of it is about 5 minutes old already (OPEN_API.md §5.2).
    "OPEN_SITE_CACHE_SECONDS": env_int("OPEN_SITE_CACHE_SECONDS", 300),
    "RATE_WINDOW_SECONDS": env_float("RATE_WINDOW_SECONDS", 60.0),
    # Requests kept back from LIMIT as a margin against clock skew with the upstream.
    "RATE_SAFETY_MARGIN": env_int("RATE_SAFETY_MARGIN", 2),
    # How long an interactive tool call may wait for a slot before answering "retry in N s".
    "RATE_WAIT_BUDGET_SECONDS": env_float("RATE_WAIT_BUDGET_SECONDS", 5.0),
    # Share of the budget background jobs may use, keeping the rest for interactive calls.
    "BACKGROUND_BUDGET_SHARE": env_float("BACKGROUND_BUDGET_SHARE", 0.5),
    # Redis socket timeout for limiter calls: past it the limiter fails closed.
    "RATE_REDIS_TIMEOUT_SECONDS": env_float("RATE_REDIS_TIMEOUT_SECONDS", 1.0),
    # Per-minute usage roll-ups (ops.UsageMinute) older than this are deleted.
    "USAGE_RETENTION_DAYS": env_int("USAGE_RETENTION_DAYS", 30),
    # When set, /metrics needs `Authorization: Bearer <METRICS_TOKEN>` (set it in production).
    "METRICS_TOKEN": os.environ.get("METRICS_TOKEN", ""),
    # OAuth lifetimes.
    "ACCESS_TOKEN_SECONDS": env_int("ACCESS_TOKEN_SECONDS", 3600),
    "REFRESH_TOKEN_SECONDS": env_int("REFRESH_TOKEN_SECONDS", 30 * 24 * 3600),
    # A rotated-out refresh token presented again within this many seconds gets the same
    # new pair (concurrent refreshes by one client's processes); later, it revokes its
    # family as a replay. 30 s is Okta's default grace period for rotation.
    "REFRESH_TOKEN_GRACE_SECONDS": env_int("REFRESH_TOKEN_GRACE_SECONDS", 30),
    # Login guessing protection.
    "LOGIN_MAX_FAILURES": env_int("LOGIN_MAX_FAILURES", 5),
    "LOGIN_LOCKOUT_SECONDS": env_int("LOGIN_LOCKOUT_SECONDS", 900),
    # Per client IP the cap is higher: one office or NAT shares an address.
    "LOGIN_MAX_FAILURES_PER_IP": env_int("LOGIN_MAX_FAILURES_PER_IP", 20),
    # Dynamic client registration: per-IP hourly cap; unused registrations pruned after.
    "DCR_PER_IP_PER_HOUR": env_int("DCR_PER_IP_PER_HOUR", 20),
    "DCR_UNUSED_PRUNE_HOURS": env_int("DCR_UNUSED_PRUNE_HOURS", 24),
    # How long a process may reuse a token check while nothing it relied on changed
    # (revocations and role changes still apply on the next request: see accounts.auth_epoch).
    # 0 checks the database on every request.
    "AUTH_CACHE_SECONDS": env_float("AUTH_CACHE_SECONDS", 60.0),
    # MCP transport: allowed Origin values (besides PUBLIC_URL); empty Origin is allowed.
    "MCP_ALLOWED_ORIGINS": env_list("MCP_ALLOWED_ORIGINS", []),
    # Safe writes: how long a person has to confirm a money-moving or irreversible call
    # (the confirmation page's link, an MCP elicitation's sealed state) before it expires.
    "CONFIRMATION_SECONDS": env_int("CONFIRMATION_SECONDS", 600),
    # CSV exports.
    "EXPORT_DIR": os.environ.get("EXPORT_DIR", str(VAR_DIR / "exports")),
    "EXPORT_RETENTION_HOURS": env_int("EXPORT_RETENTION_HOURS", 24),
    # Rows per Core API page an export asks for (the Core API's maximum is 100).
    "EXPORT_PAGE_SIZE": env_int("EXPORT_PAGE_SIZE", 100),
}

# --- Celery ------------------------------------------------------------------------------

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# The queue the gateway sends its tasks to and the worker takes them from: two deployments
# sharing one broker (and key prefix) keep their tasks apart with different names.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": REDIS_KEY_PREFIX + "celery:"}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"global_keyprefix": REDIS_KEY_PREFIX + "celery:"}
# Tasks report through the database (export jobs, usage rows), not through results.
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE = {
    "rollup-usage": {"task": "ops.tasks.rollup_usage", "schedule": 60.0},
    "delete-expired-exports": {"task": "mcp_bridge.exports.tasks.delete_expired_exports", "schedule": 600.0},
    "delete-old-confirmations": {"task": "mcp_bridge.tasks.delete_old_confirmations", "schedule": 3600.0},
    # Each account's rate limit and sites from Pelcro's GET /account (also read when a key is saved).
    "refresh-accounts": {
        "task": "mcp_bridge.core.tasks.refresh_accounts",
        "schedule": env_float("ACCOUNT_REFRESH_SECONDS", 3600.0),
    },
    # Subscribers' Pelcro sign-ins left by ended connections (mcp_bridge/open/sign_out.py).
    "sweep-open-sign-ins": {
        "task": "mcp_bridge.open.tasks.sweep_sign_ins",
        "schedule": PELCRO_GATEWAY["OPEN_JWT_SWEEP_SECONDS"],
    },
    "clear-expired-tokens": {"task": "accounts.tasks.clear_expired_tokens", "schedule": 3600.0},
    "prune-unused-registrations": {"task": "accounts.tasks.prune_unused_registrations", "schedule": 3600.0},
}

# --- Logging -----------------------------------------------------------------------------

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
if LOG_LEVEL not in logging.getLevelNamesMapping():
    # logging.config would only say "Unable to configure root logger".
    raise ImproperlyConfigured(
        f"LOG_LEVEL={LOG_LEVEL!r} is not DEBUG, INFO, WARNING, ERROR or CRITICAL; fix or unset it"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "pelcro_gateway.logging.RedactSecretsFilter"},
        "client_errors": {"()": "pelcro_gateway.logging.ClientErrorsWithoutTraceback"},
    },
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["client_errors", "redact"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's default config gives "django" its own handlers (a bare console handler
        # when DEBUG is on, mail_admins when it is off) and lets records propagate to root
        # too: each django.request warning was written twice, once bare. One handler, ours
        # (formatted, redacted), via root; the level stays Django's default, INFO.
        "django": {"handlers": [], "propagate": True, "level": "INFO"},
        # httpx logs full request URLs at INFO; keep it quiet (URLs may carry codes).
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # uvicorn's access log through our handler and its redaction: a client may put a
        # token in a query string (?access_token=…), and the request line would carry it.
        # This config replaces uvicorn's own, so its --no-access-log flag no longer
        # applies: ACCESS_LOG=0 turns the access log off.
        "uvicorn.access": {
            "handlers": ["console"],
            "propagate": False,
            "level": "INFO" if env_bool("ACCESS_LOG", True) else "WARNING",
        },
    },
}

# --- OAuth 2.1 provider (django-oauth-toolkit) -------------------------------------------

# DOT's own models, named explicitly so migrations that reference them resolve.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"

# Custom URI schemes native MCP clients register as redirect URIs (RFC 8252 §7.1).
# Loopback http (any port) and https are always accepted; see accounts/redirect_uris.py.
OAUTH_NATIVE_REDIRECT_SCHEMES = env_list(
    "OAUTH_NATIVE_REDIRECT_SCHEMES", ["cursor", "vscode", "vscode-insiders", "windsurf", "claude"]
)
# Dev/tests only (refused elsewhere by accounts.checks): let client ID metadata documents
# be fetched from a loopback https server whose certificate is signed by this CA file.
CIMD_DEV_LOOPBACK_CA_FILE = os.environ.get("CIMD_DEV_LOOPBACK_CA_FILE", "")

OAUTH2_PROVIDER = {
    # Our own server: authorization code (PKCE S256 only) and refresh, nothing else.
    "OAUTH2_SERVER_CLASS": "accounts.oauth_server.GatewayServer",
    "OAUTH2_VALIDATOR_CLASS": "accounts.oauth_validator.GatewayOAuth2Validator",
    "PKCE_REQUIRED": True,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ACCESS_TOKEN_EXPIRE_SECONDS": PELCRO_GATEWAY["ACCESS_TOKEN_SECONDS"],
    "REFRESH_TOKEN_EXPIRE_SECONDS": PELCRO_GATEWAY["REFRESH_TOKEN_SECONDS"],
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    # DOT's grace period cannot work with hashed tokens (its check E001): the gateway's
    # own (REFRESH_TOKEN_GRACE_SECONDS, accounts.rotation) hands duplicates the same pair.
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "SCOPES": {
        "read": "Read the account's Core API data",
        "write": "Change the account's Core API data (implies read)",
    },
    "DEFAULT_SCOPES": ["read", "write"],
    # Always show the consent screen: it is where the account is chosen.
    "REQUEST_APPROVAL_PROMPT": "force",
    # RFC 9700 gates, all on: no implicit/password grants, no "plain" PKCE, no tokens in
    # query strings, RFC 9207 `iss` in authorization responses, tokens hashed at rest.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    # Redirect URIs: exact match, except the port of loopback ones (RFC 8252 §7.3).
    # "http" is for loopback only (accounts.redirect_uris refuses other http hosts), so
    # DOT's `check --deploy` warning oauth2_provider.W008 is expected.
    "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https", *OAUTH_NATIVE_REDIRECT_SCHEMES],
    "ALLOW_URI_WILDCARDS": False,
    "ALLOW_LOCALHOST_LOOPBACK": True,
    # One issuer everywhere (metadata, `iss`, RFC 9728), whatever Host a request carries.
    "OIDC_ISS_ENDPOINT": PUBLIC_URL,
    # Open dynamic client registration (rate-limited per IP in accounts.views.registration).
    "DCR_ENABLED": True,
    "DCR_REGISTRATION_PERMISSION_CLASSES": ("oauth2_provider.dcr.AllowAllDCRPermission",),
    # Client ID metadata documents; the fetcher adds our redirect-URI policy.
    "CIMD_ENABLED": True,
    "CIMD_METADATA_FETCHER": "accounts.cimd_fetch.GatewayMetadataFetcher",
    # RFC 8414 / RFC 9728: advertise only what the server does.
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "refresh_token"],
    "OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["none", "client_secret_basic", "client_secret_post"],
    "OAUTH2_PROTECTED_RESOURCE_IDENTIFIER": MCP_RESOURCE_URL,
    "OAUTH2_PROTECTED_RESOURCE_AUTHORIZATION_SERVERS": [PUBLIC_URL],
    "OAUTH2_PROTECTED_RESOURCE_BEARER_METHODS_SUPPORTED": ["header"],
    "OAUTH2_PROTECTED_RESOURCE_NAME": "Pelcro MCP Gateway",
    "OAUTH2_PROTECTED_RESOURCE_DOCUMENTATION": PUBLIC_URL + "/",
}
