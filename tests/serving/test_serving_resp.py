"""The API's pipelined Redis client: replies parsed from any split of the byte stream, matched
to their commands under concurrency, AUTH from the URL, scripts after a cache flush. (SELECT
from the URL: every API test runs on a database of its own.)"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from audotics import services
from audotics.errors import AudoticsError
from audotics.settings import Settings
from serving.resp import (
    Endpoint,
    PipelinedRedis,
    RedisReplyError,
    RedisUnavailable,
    Script,
    _Incomplete,
    parse,
)

STREAM = (
    b'*3\r\n$3\r\nhit\r\n$5\r\nals-a\r\n$11\r\n{"a":"b\r\n"}\r\n'  # a CRLF inside a value
    b"$-1\r\n:42\r\n+OK\r\n-NOSCRIPT No matching script\r\n*-1\r\n*0\r\n"
)
REPLIES = [[b"hit", b"als-a", b'{"a":"b\r\n"}'], None, 42, b"OK", "NOSCRIPT", None, []]


def readable(reply: object) -> object:
    return str(reply).split()[0] if isinstance(reply, RedisReplyError) else reply


def parse_all(buffer: bytes) -> list:
    replies, position = [], 0
    while position < len(buffer):
        reply, position = parse(buffer, position)
        replies.append(readable(reply))
    return replies


def test_parse_reads_every_reply_type() -> None:
    assert parse_all(STREAM) == REPLIES


def test_parse_waits_for_the_rest_of_a_split_reply() -> None:
    """As replies arrive in TCP segments: cut the stream anywhere, parse what is complete,
    then the rest once it arrived."""
    for cut in range(1, len(STREAM)):
        parsed, position = [], 0
        with contextlib.suppress(_Incomplete):
            while position < cut:
                reply, position = parse(STREAM[:cut], position)
                parsed.append(readable(reply))
        assert parsed + parse_all(STREAM[position:]) == REPLIES


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6390/3", Endpoint("127.0.0.1", 6390, db=3)),
        ("redis://:p%40ss@cache:1", Endpoint("cache", 1, password="p@ss")),
        ("rediss://user:pw@cache/2", Endpoint("cache", tls=True, db=2, username="user",
                                              password="pw")),
        ("unix:///run/redis.sock?db=4", Endpoint(path="/run/redis.sock", db=4)),
        ("redis://cache?db=5", Endpoint("cache", db=5)),
    ],
)  # fmt: skip
def test_endpoint_from_url(url: str, expected: Endpoint) -> None:
    assert Endpoint.from_url(url) == expected


def test_endpoint_refuses_other_schemes() -> None:
    with pytest.raises(AudoticsError, match="must start with redis://"):
        Endpoint.from_url("http://cache:6379")


def test_concurrent_commands_get_their_own_replies(running_services: Settings) -> None:
    async def scenario() -> list:
        client = PipelinedRedis(running_services.redis_dsn, timeout=5)
        replies = await asyncio.gather(*(client.call("ECHO", f"reply {i}") for i in range(2000)))
        await client.close()
        return replies

    assert asyncio.run(scenario()) == [f"reply {i}".encode() for i in range(2000)]


def test_auth_comes_from_the_url(running_services: Settings) -> None:
    admin = services.redis_admin_client(running_services)  # the app user may not run ACL
    admin.acl_setuser("serving-test", enabled=True, passwords=["+secret"], keys=["*"],
                      commands=["+@all"])  # fmt: skip
    base = f"127.0.0.1:{running_services.redis_port}"

    async def whoami(url: str) -> bytes:
        client = PipelinedRedis(url, timeout=5)
        try:
            return await client.call("ACL", "WHOAMI")
        finally:
            await client.close()

    try:
        assert asyncio.run(whoami(f"redis://serving-test:secret@{base}")) == b"serving-test"
        with pytest.raises(RedisUnavailable, match="WRONGPASS"):
            asyncio.run(whoami(f"redis://serving-test:wrong@{base}"))
    finally:
        admin.acl_deluser("serving-test")


def test_scripts_are_loaded_again_after_the_cache_is_flushed(running_services: Settings) -> None:
    script = Script("return ARGV[1] .. KEYS[1]")

    async def scenario() -> list:
        client = PipelinedRedis(running_services.redis_dsn, timeout=5)
        first = await script(client, ["key"], ["arg-"])
        await client.call("SCRIPT", "FLUSH")  # what a Redis restart does
        again = await script(client, ["key"], ["arg-"])
        await client.close()
        return [first, again]

    assert asyncio.run(scenario()) == [b"arg-key", b"arg-key"]
