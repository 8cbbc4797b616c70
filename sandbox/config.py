"""The sandbox's settings: start-up values from the environment, runtime knobs validated.

Start-up only: `SANDBOX_SEED_FILE`, `SANDBOX_SEED`, `SANDBOX_CUSTOMERS_PER_SITE`,
`SANDBOX_ADMIN_TOKEN`, `SANDBOX_LOG_SIZE`, `SANDBOX_JWT_SECRET` (the key signing Open API
subscriber JWTs; random per process when unset, set it only so tests can forge tokens). Runtime knobs (also changeable through
`PUT /_sandbox/config`): rate limit override, window, latency, error rate, forced 429
share, background-job delay, the Open API's per-site limit and login lock-out.

Rate limit precedence: each account's own `api_core_rate_limit` (demo/accounts.json, or
`PATCH /_sandbox/accounts/<slug>`) applies unless the `rate_limit` knob
(`SANDBOX_RATE_LIMIT`) is set, which then overrides every account's (tests and benchmarks
use it for an "unlimited" sandbox). `null`/empty means "no override".
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SEED_FILE = REPO_ROOT / "demo" / "accounts.json"


class ConfigError(ValueError):
    """Invalid settings; `errors` maps each setting to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class Knobs:
    """Settings that tests and benchmarks may change while the sandbox runs."""

    rate_limit: int | None = None  # overrides every account's api_core_rate_limit when set
    rate_window: float = 60.0
    latency_ms: float = 0.0
    error_rate: float = 0.0
    force_429: float = 0.0
    job_delay: float = 2.0  # seconds before a queued background job (refund cancellation) runs
    # Open API (/api/v1/sdk): requests per `rate_window` per site (None: no limit, as Pelcro
    # documents none), and the login lock-out (OPEN_API.md §2: 10 failures in 5 minutes).
    open_rate_limit: int | None = None
    login_max_attempts: int = 10
    login_lockout_window: float = 300.0

    def as_dict(self) -> dict:
        return asdict(self)

    def updated(self, changes: dict) -> Knobs:
        """A copy with `changes` applied, or ConfigError naming every bad setting."""
        known = {f.name for f in fields(self)}
        errors: dict[str, list[str]] = {}
        values = self.as_dict()
        for name, raw in changes.items():
            if name not in known:
                errors[name] = [f"Unknown setting; use one of: {', '.join(sorted(known))}."]
                continue
            if raw is None and name in _NULLABLE:
                values[name] = None
                continue
            try:
                values[name] = _PARSERS[name](raw)
            except (TypeError, ValueError) as exc:
                errors[name] = [str(exc)]
        if errors:
            raise ConfigError(errors)
        return Knobs(**values)


def _number(raw, *, integer: bool = False) -> float:
    if isinstance(raw, bool):
        raise TypeError("must be a number")
    if isinstance(raw, str):
        raw = raw.strip()
        try:
            raw = int(raw) if integer else float(raw)
        except ValueError:
            raise ValueError("must be an integer" if integer else "must be a number") from None
    if integer and (not isinstance(raw, int) and not (isinstance(raw, float) and raw.is_integer())):
        raise ValueError("must be an integer")
    if not isinstance(raw, (int, float)):
        raise TypeError("must be a number")
    return int(raw) if integer else float(raw)


def _in_range(value: float, low: float, high: float, *, low_open: bool = False) -> float:
    if value < low or (low_open and value == low) or value > high:
        bound = f"greater than {low:g}" if low_open else f"at least {low:g}"
        raise ValueError(f"must be {bound} and at most {high:g}")
    return value


def _share_or_switch(raw) -> float:
    """A share 0..1, or on/off (true/false) meaning 1/0."""
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    if isinstance(raw, str) and raw.strip().lower() in ("on", "true", "yes"):
        return 1.0
    if isinstance(raw, str) and raw.strip().lower() in ("off", "false", "no", ""):
        return 0.0
    return _in_range(_number(raw), 0, 1)


_PARSERS = {
    "rate_limit": lambda raw: int(_in_range(_number(raw, integer=True), 1, 1_000_000_000)),
    "rate_window": lambda raw: _in_range(_number(raw), 0, 86_400, low_open=True),
    "latency_ms": lambda raw: _in_range(_number(raw), 0, 60_000),
    "error_rate": lambda raw: _in_range(_number(raw), 0, 1),
    "force_429": _share_or_switch,
    "job_delay": lambda raw: _in_range(_number(raw), 0, 3600),
    "open_rate_limit": lambda raw: int(_in_range(_number(raw, integer=True), 1, 1_000_000_000)),
    "login_max_attempts": lambda raw: int(_in_range(_number(raw, integer=True), 1, 1000)),
    "login_lockout_window": lambda raw: _in_range(_number(raw), 0, 86_400, low_open=True),
}
_NULLABLE = {"rate_limit", "open_rate_limit"}

_ENV_KNOBS = {
    "rate_limit": "SANDBOX_RATE_LIMIT",
    "rate_window": "SANDBOX_RATE_WINDOW",
    "latency_ms": "SANDBOX_LATENCY_MS",
    "error_rate": "SANDBOX_ERROR_RATE",
    "force_429": "SANDBOX_FORCE_429",
    "job_delay": "SANDBOX_JOB_DELAY",
    "open_rate_limit": "SANDBOX_OPEN_RATE_LIMIT",
    "login_max_attempts": "SANDBOX_LOGIN_MAX_ATTEMPTS",
    "login_lockout_window": "SANDBOX_LOGIN_LOCKOUT_WINDOW",
}


@dataclass(frozen=True)
class StartupConfig:
    """Everything read from the environment when the process starts."""

    seed_file: Path
    seed: int
    customers_per_site: int
    admin_token: str | None
    log_size: int
    knobs: Knobs
    jwt_secret: str | None = None


def load_config(environ: dict[str, str] | None = None) -> StartupConfig:
    """Read and validate the environment; raises ConfigError naming each bad variable."""
    env = os.environ if environ is None else environ
    errors: dict[str, list[str]] = {}

    def integer(name: str, default: int, low: int, high: int) -> int:
        try:
            return int(_in_range(_number(env.get(name, str(default)), integer=True), low, high))
        except (TypeError, ValueError) as exc:
            errors[name] = [str(exc)]
            return default

    seed = integer("SANDBOX_SEED", 20260101, 0, 2**63)
    customers = integer("SANDBOX_CUSTOMERS_PER_SITE", 200, 0, 100_000)
    log_size = integer("SANDBOX_LOG_SIZE", 10_000, 1, 10_000_000)
    changes = {knob: env[var] for knob, var in _ENV_KNOBS.items() if env.get(var, "") != ""}
    knobs = Knobs()
    try:
        knobs = knobs.updated(changes)
    except ConfigError as exc:
        errors.update({_ENV_KNOBS[k]: v for k, v in exc.errors.items()})
    seed_file = Path(env.get("SANDBOX_SEED_FILE") or DEFAULT_SEED_FILE)
    if not seed_file.is_file():
        errors["SANDBOX_SEED_FILE"] = [f"{seed_file} is not a readable file"]
    if errors:
        raise ConfigError(errors)
    return StartupConfig(
        seed_file=seed_file,
        seed=seed,
        customers_per_site=customers,
        admin_token=env.get("SANDBOX_ADMIN_TOKEN") or None,
        log_size=log_size,
        knobs=knobs,
        jwt_secret=env.get("SANDBOX_JWT_SECRET") or None,
    )
