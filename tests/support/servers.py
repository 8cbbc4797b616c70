"""Real servers for end-to-end tests: the Core API sandbox and the gateway itself."""

import os

from django.db import connection

from devtools.servers import ServerProcess, database_url_of, free_port, uvicorn_argv

SANDBOX_ADMIN_TOKEN = "sandbox-admin-test-token"


def start_sandbox(**env: str) -> ServerProcess:
    port = free_port()
    base_env = {"SANDBOX_ADMIN_TOKEN": SANDBOX_ADMIN_TOKEN}
    argv = [os.sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(port)]
    return ServerProcess("sandbox", argv, port, {**base_env, **env}, "/_sandbox/health").start()


def gateway_env(sandbox: ServerProcess | None, port: int, **extra: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url_of(connection.settings_dict),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PORT": str(port),
        "GATEWAY_ENV": "dev",
        "DEBUG": "0",
        "ACCESS_LOG": "0",
        "FORWARDED_ALLOW_IPS": "",  # as every launcher runs it: no proxy trusted
    }
    if sandbox is not None:
        env["CORE_API_BASE_URL"] = sandbox.url + "/api/v1/core"
        env["OPEN_API_BASE_URL"] = sandbox.url + "/api/v1/sdk"
    env.update(extra)
    return env


def start_gateway(sandbox: ServerProcess | None, **extra: str) -> ServerProcess:
    port = free_port()
    env = gateway_env(sandbox, port, **extra)
    return ServerProcess("gateway", uvicorn_argv("pelcro_gateway.asgi:application", port), port, env, "/health").start()
