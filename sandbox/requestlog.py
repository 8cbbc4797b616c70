"""What reached the sandbox's API: one entry per request, in a bounded in-memory log.

Entries carry a sequence number that never restarts (so `since` stays meaningful after a
clear) and the SHA-256 of the request body, so a test can prove a write arrived once.
The API key is never recorded, only the account it belongs to.
"""

from __future__ import annotations

import hashlib
from collections import deque

from sandbox import clock


class RequestLog:
    def __init__(self, size: int):
        self._entries: deque[dict] = deque(maxlen=size)
        self._seq = 0

    def record(self, *, account: str | None, method: str, path: str, query: str, status: int, body: bytes,
               duration_ms: float, fault: str | None) -> None:
        self._seq += 1
        self._entries.append({
            "seq": self._seq,
            "time": clock.now().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "account": account,
            "method": method,
            "path": path,
            "query": query,
            "status": status,
            "body_sha256": hashlib.sha256(body).hexdigest() if body else None,
            "duration_ms": round(duration_ms, 3),
            "fault": fault,
        })

    def entries(self, since: int = 0, account: str | None = None) -> list[dict]:
        return [e for e in self._entries if e["seq"] > since and (account is None or e["account"] == account)]

    @property
    def last_seq(self) -> int:
        return self._seq

    def clear(self) -> None:
        self._entries.clear()
