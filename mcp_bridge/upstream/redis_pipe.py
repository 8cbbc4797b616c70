"""A small pipelined Redis client for the commands every tool call makes.

Each tool call asks Redis three times (the auth epoch, the limiter's acquire and finish
scripts). Through redis-py's asyncio client each command costs about 100 µs of CPU (a pool
checkout, a retry wrapper, a timeout task, reply parsing in Python); here it costs about 40:
one connection per event loop, every command written as it comes and answered in order
(RESP pipelining, so concurrent calls share the connection), replies parsed by hiredis.

On this path a write to a loopback socket costs about 100 µs of CPU in the kernel, more
than the rest of a command, so writes are few: commands go out at the end of the event
loop's turn, all the commands of concurrent calls in one write; and a command whose reply
nobody needs (the limiter's finish) is not waited for and rides with the next command (the
next tool call's epoch read, at the latest after `UNANSWERED_DELAY`). The delay only makes
the limiter count a finished request a few milliseconds longer, the safe direction.

Failure behaviour matches what the limiter relies on from redis-py:
- Redis unreachable, a reply slower than the timeout, or the connection lost: the waiting
  commands fail with redis-py's `ConnectionError` / `TimeoutError` (the limiter fails closed)
  and the connection is dropped; the next command connects again.
- A command that fails because an old connection turned out to be dead (Redis restarted)
  is tried once more on a fresh one, as redis-py's one retry does.
- Redis error replies raise redis-py's classes for them (`ResponseError`; LOADING is a
  `BusyLoadingError`, i.e. unavailable; NOSCRIPT makes `evalsha` load the script again).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import itertools
import logging
import ssl
from functools import partial
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis
from redis.exceptions import AuthenticationError, BusyLoadingError, NoScriptError, ReadOnlyError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

_DISCARD = object()  # a waiter whose reply nobody reads
_connection_numbers = itertools.count(1)
UNANSWERED_DELAY = 0.002  # the longest an unanswered command waits for company (seconds)


def _encode(args: tuple) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, (int, float)) and not isinstance(arg, bool):
            data = repr(arg).encode()
        else:
            raise TypeError(f"cannot send {type(arg).__name__} to Redis")
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


# Error replies that redis-py turns into its own classes; LOADING (a restarted Redis still
# reading its data) and refused credentials count as "Redis unavailable" there, as here.
_ERRORS = {
    "NOSCRIPT": NoScriptError,
    "LOADING": BusyLoadingError,
    "NOAUTH": AuthenticationError,
    "WRONGPASS": AuthenticationError,
    "READONLY": ReadOnlyError,
}


def _error(reply: hiredis.ReplyError) -> Exception:
    message = str(reply)
    return _ERRORS.get(message.split(" ", 1)[0], ResponseError)(message)


class _Protocol(asyncio.Protocol):
    """One connection: replies go to the waiters in the order their commands were sent."""

    def __init__(self, timeout: float) -> None:
        self.reader = hiredis.Reader()
        self.waiters: collections.deque = collections.deque()
        # One watchdog per connection instead of a timer per command: the connection is
        # dropped (failing every waiting command) when commands wait and no reply has come
        # for `timeout` seconds.
        self.timeout = timeout
        self.last_reply = 0.0
        self.watchdog: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.scripts: set[str] = set()  # SHA1s loaded through this connection
        self.unsent: list[bytes] = []  # commands not yet written, in order
        self.flush_soon = False  # a write at the end of this turn of the loop is due
        self.flush_timer: asyncio.TimerHandle | None = None  # ...or one for unanswered commands

    def connection_made(self, transport) -> None:
        self.transport = transport

    def expect(self, waiter) -> None:
        """A command was queued: its reply will go to `waiter`."""
        if not self.waiters:
            self.last_reply = asyncio.get_running_loop().time()  # the silence starts now
        self.waiters.append(waiter)
        if self.watchdog is None and not self.closed:
            self.watchdog = asyncio.get_running_loop().call_later(self.timeout, self.check_silence)

    def check_silence(self) -> None:
        self.watchdog = None
        if not self.waiters or self.closed:
            return
        loop = asyncio.get_running_loop()
        silent_until = self.last_reply + self.timeout
        if loop.time() >= silent_until:
            self.fail(RedisTimeoutError(f"Redis did not answer within {self.timeout} s"))
        else:
            self.watchdog = loop.call_at(silent_until, self.check_silence)

    def data_received(self, data: bytes) -> None:
        self.last_reply = asyncio.get_running_loop().time()
        self.reader.feed(data)
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError as exc:
                self.fail(RedisConnectionError(f"Redis protocol error: {exc}"))
                return
            if reply is False:
                return
            if not self.waiters:
                self.fail(RedisConnectionError("Redis sent a reply nobody asked for"))
                return
            waiter = self.waiters.popleft()
            if waiter is _DISCARD:
                if isinstance(reply, hiredis.ReplyError):
                    logger.warning("Redis refused an unanswered command: %s", reply)
                continue
            if waiter.done():  # its caller gave up (cancelled)
                continue
            if isinstance(reply, hiredis.ReplyError):
                waiter.set_exception(_error(reply))
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError("Redis closed the connection" + (f": {exc}" if exc else "")))

    def write(self, data: bytes) -> None:
        """Send `data` at the end of this turn of the event loop, in one socket write with
        everything else queued by then (other calls' commands, unanswered ones)."""
        self.unsent.append(data)
        if not self.flush_soon:
            self.flush_soon = True
            asyncio.get_running_loop().call_soon(self.flush)

    def write_later(self, data: bytes) -> None:
        """Queue an unanswered command until the next write (or the delay runs out)."""
        self.unsent.append(data)
        if not self.flush_soon and self.flush_timer is None:
            self.flush_timer = asyncio.get_running_loop().call_later(UNANSWERED_DELAY, self.flush)

    def flush(self) -> None:
        self.flush_soon = False
        if self.flush_timer is not None:
            self.flush_timer.cancel()
            self.flush_timer = None
        if self.unsent and not self.closed:
            self.transport.write(b"".join(self.unsent))
        self.unsent.clear()

    def fail(self, error: Exception) -> None:
        """Drop the connection; every command still waiting fails with `error` (queued
        unanswered commands are lost with it: the limiter's entries then expire on their own)."""
        self.closed = True
        self.unsent.clear()
        for timer in (self.flush_timer, self.watchdog):
            if timer is not None:
                timer.cancel()
        self.flush_timer = self.watchdog = None
        if self.transport is not None:
            self.transport.close()
        while self.waiters:
            waiter = self.waiters.popleft()
            if waiter is not _DISCARD and not waiter.done():
                waiter.set_exception(error)


class PipelinedRedis:
    """A Redis client for one event loop (create it inside that loop)."""

    def __init__(self, url: str, *, timeout: float = 1.0):
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"unsupported Redis URL scheme {parts.scheme!r} (redis:// or rediss://)")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.db = int(parts.path.lstrip("/") or 0)
        self.ssl = ssl.create_default_context() if parts.scheme == "rediss" else None
        self.timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future | None = None
        self._shas: dict[str, str] = {}
        # Which connection (unique in this process) the last command went over: a new one
        # may mean a restarted Redis, whose data may predate writes made while it was away.
        self.connection_number = 0

    async def _connection(self) -> tuple[_Protocol, bool]:
        """(an open connection, whether it was opened just now)."""
        protocol = self._protocol
        if protocol is not None and not protocol.closed:
            return protocol, False
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting), True
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        protocol = None
        try:
            async with asyncio.timeout(self.timeout):
                _, protocol = await loop.create_connection(
                    partial(_Protocol, self.timeout), self.host, self.port, ssl=self.ssl
                )
                if self.password is not None:
                    auth = ("AUTH", self.username, self.password) if self.username else ("AUTH", self.password)
                    await self._send(protocol, auth)
                if self.db:
                    await self._send(protocol, ("SELECT", self.db))
        except (TimeoutError, OSError, RedisConnectionError, ResponseError) as exc:
            if protocol is not None:
                protocol.fail(RedisConnectionError("connection set-up failed"))
            # The message names the server, never the password.
            raise RedisConnectionError(
                f"cannot connect to Redis at {self.host}:{self.port}: {type(exc).__name__}: {exc}"
            ) from None
        self._protocol = protocol
        self.connection_number = next(_connection_numbers)
        return protocol

    def _send(self, protocol: _Protocol, args: tuple, *, wait: bool = True) -> asyncio.Future | None:
        if not wait:
            protocol.write_later(_encode(args))
            protocol.expect(_DISCARD)
            return None
        protocol.write(_encode(args))
        waiter = asyncio.get_running_loop().create_future()
        protocol.expect(waiter)
        return waiter

    async def _roundtrip(self, protocol: _Protocol, args: tuple, wait: bool) -> Any:
        waiter = self._send(protocol, args, wait=wait)
        return None if waiter is None else await waiter

    async def execute(self, *args: Any, wait: bool = True, script: str | None = None) -> Any:
        """Send one command; its reply (None at once when `wait` is False). With `script`
        (the command being its EVALSHA), the script is loaded first on a new connection."""
        protocol, fresh = await self._connection()
        try:
            return await self._run(protocol, args, wait, script)
        except RedisConnectionError:
            if fresh:
                raise  # a connection opened just now failed: Redis is down for real
            # The old connection turned out dead (e.g. Redis restarted): once more.
            protocol, _ = await self._connection()
            return await self._run(protocol, args, wait, script)

    async def _run(self, protocol: _Protocol, args: tuple, wait: bool, script: str | None) -> Any:
        if script is not None and args[1] not in protocol.scripts:
            # Pipelined in front of the EVALSHA: a restarted Redis has forgotten its scripts,
            # and a fire-and-forget EVALSHA could not tell (NOSCRIPT would go unseen).
            self._send(protocol, ("SCRIPT", "LOAD", script), wait=False)
            protocol.scripts.add(args[1])
        return await self._roundtrip(protocol, args, wait)

    async def evalsha(self, script: str, keys: list[str], args: list[Any], *, wait: bool = True) -> Any:
        """Run a Lua script (by its SHA1; loaded once per connection)."""
        sha = self._shas.get(script)
        if sha is None:
            sha = self._shas[script] = hashlib.sha1(script.encode()).hexdigest()
        command = ("EVALSHA", sha, len(keys), *keys, *args)
        try:
            return await self.execute(*command, wait=wait, script=script)
        except NoScriptError:  # someone ran SCRIPT FLUSH
            if self._protocol is not None:
                self._protocol.scripts.discard(sha)
            return await self.execute(*command, wait=wait, script=script)

    async def aclose(self) -> None:
        if self._protocol is not None:
            self._protocol.fail(RedisConnectionError("client closed"))
            self._protocol = None
