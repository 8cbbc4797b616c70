"""What reached the sandbox's API: one entry per request, in a bounded in-memory log.

Entries carry a sequence number that never restarts (so `since` stays meaningful after a
clear) and the SHA-256 of the request body, so a test can prove a write arrived once.
The API key (or subscriber JWT) is never recorded, only the account it belongs to; `api`
says which API was called (`core` or `open`); Open entries also carry the `customer` id
once a token was accepted.
"""

from __future__ import annotations

import hashlib
from collections import deque

from sandbox import clock


class RequestLog:
    def __init__(self, size: int):
        self._entries: deque[dict] = deque(maxlen=size)
        self._seq = 0

    def record(
        self,
        *,
        api: str,
        account: str | None,
        method: str,
        path: str,
        query: str,
        status: int,
        body: bytes,
        duration_ms: float,
        fault: str | None,
        customer: int | None = None,
    ) -> None:
        self._seq += 1
        self._entries.append(
            {
                "seq": self._seq,
                "time": clock.now().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "api": api,  # "core" (/api/v1/core) or "open" (/api/v1/sdk)
                "account": account,
                "method": method,
                "path": path,
                "query": query,
                "status": status,
                "body_sha256": hashlib.sha256(body).hexdigest() if body else None,
                "duration_ms": round(duration_ms, 3),
                "fault": fault,
                "customer": customer,
            }
        )

    def entries(self, since: int = 0, account: str | None = None, api: str | None = None) -> list[dict]:
        return [
            e
            for e in self._entries
            if e["seq"] > since and (account is None or e["account"] == account) and (api is None or e["api"] == api)
        ]

    @property
    def last_seq(self) -> int:
        return self._seq

    def clear(self) -> None:
        self._entries.clear()
