"""The pipelined Redis client of the limiter's hot path (mcp_bridge/redis_pipe.py), against
real redis-server processes: answers in order under concurrency, errors as redis-py
raises them, fail fast when Redis is down or silent, and recovery after a restart without a
new client (scripts loaded again, even for commands whose answer nobody awaits)."""

import asyncio
import socket
import time

import pytest
import redis as redis_lib
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from devtools.servers import free_port
from mcp_bridge.upstream.redis_pipe import PipelinedRedis
from tests.fixtures_ratelimit import OwnRedis

SCRIPT = "redis.call('INCR', KEYS[1]); return {tonumber(ARGV[1]) * 2, redis.call('GET', KEYS[1])}"


async def test_concurrent_commands_each_get_their_own_answer(own_redis):
    client = PipelinedRedis(own_redis.url)
    try:
        answers = await asyncio.gather(*(client.execute("INCR", "n") for _ in range(500)))
        assert sorted(answers) == list(range(1, 501))  # every caller got a distinct answer
        echoes = await asyncio.gather(*(client.execute("ECHO", f"m{i}") for i in range(200)))
        assert echoes == [f"m{i}".encode() for i in range(200)]  # and its own, in order
        assert await client.execute("GET", "missing") is None
    finally:
        await client.aclose()


async def test_scripts_errors_and_fire_and_forget(own_redis):
    client = PipelinedRedis(own_redis.url)
    try:
        assert await client.evalsha(SCRIPT, ["k"], [21]) == [42, b"1"]
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await client.execute("LPUSH", "k", "x")  # "k" holds a string
        await client.evalsha(SCRIPT, ["k"], [1], wait=False)  # unanswered: rides with the next one
        assert await client.execute("GET", "k") == b"2"  # ...which sees it done, in order
        await client.evalsha(SCRIPT, ["k"], [1], wait=False)
        await asyncio.sleep(0.05)  # no next command: sent anyway after a short delay
        other = redis_lib.Redis.from_url(own_redis.url)
        assert other.get("k") == b"3"
        other.script_flush()  # Redis forgets every script
        assert await client.evalsha(SCRIPT, ["k"], [1]) == [2, b"4"]  # reloaded on NOSCRIPT
        with pytest.raises(TypeError):
            await client.execute("SET", "k", None)
    finally:
        await client.aclose()


async def test_down_fails_fast_and_a_restart_needs_no_new_client(own_redis):
    client = PipelinedRedis(own_redis.url, timeout=1.0)
    try:
        assert await client.evalsha(SCRIPT, ["c"], [1]) == [2, b"1"]
        own_redis.proc.kill()
        own_redis.proc.wait()
        began = time.monotonic()
        with pytest.raises(RedisConnectionError):
            await client.execute("GET", "c")
        assert time.monotonic() - began < 1.5
        await asyncio.to_thread(own_redis.start)  # AOF: "c" survives
        # The first command after the restart has to load the script on the new connection,
        # even though nobody waits for its answer.
        await client.evalsha(SCRIPT, ["c"], [1], wait=False)
        assert await client.execute("GET", "c") == b"2"
    finally:
        await client.aclose()


async def test_a_silent_server_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = PipelinedRedis(f"redis://127.0.0.1:{port}/0", timeout=0.3)
    try:
        began = time.monotonic()
        with pytest.raises(RedisTimeoutError):
            await client.execute("PING")
        assert time.monotonic() - began < 1.0
    finally:
        await client.aclose()
        listener.close()


async def test_nothing_listening_is_a_connection_error():
    client = PipelinedRedis(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    with pytest.raises(RedisConnectionError):
        await client.execute("PING")


async def test_password_and_database_from_the_url():
    server = OwnRedis(password="s3cret-pass").start()
    try:
        url = server.url.replace("/0", "/3")
        client = PipelinedRedis(url)
        await client.execute("SET", "where", "db3")
        assert redis_lib.Redis.from_url(url).get("where") == b"db3"
        assert redis_lib.Redis.from_url(server.url).get("where") is None  # not in db 0
        await client.aclose()
        wrong = PipelinedRedis(server.url.replace("s3cret-pass", "wrong"))
        with pytest.raises(RedisConnectionError) as refused:
            await wrong.execute("PING")
        assert "s3cret" not in str(refused.value) and "wrong" not in str(refused.value)
        assert isinstance(refused.value, RedisConnectionError) and not isinstance(refused.value, AuthenticationError)
    finally:
        server.cleanup()


def test_only_tcp_urls_are_accepted():
    with pytest.raises(ValueError, match="redis:// or rediss://"):
        PipelinedRedis("unix:///var/run/redis.sock")
