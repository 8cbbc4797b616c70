"""`python -m sandbox --host 127.0.0.1 --port 8100`: the Core and Open API sandbox as its own process."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from sandbox.app import create_app
from sandbox.config import ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Pelcro Core API sandbox")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8100, help="port to bind (default 8100)")
    args = parser.parse_args(argv)
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"sandbox: invalid configuration: {exc}", file=sys.stderr)
        return 2
    app = create_app(config)
    print(
        f"sandbox: Core API on http://{args.host}:{args.port}/api/v1/core, "
        f"Open API on http://{args.host}:{args.port}/api/v1/sdk",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
