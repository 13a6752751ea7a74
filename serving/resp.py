"""A small asyncio Redis client for the API's hot path: one connection per worker; the commands
of all concurrent requests leave together once per event-loop turn and their replies are
matched in order (pipelining across requests).

Why not redis-py's asyncio client: with its pure-Python parser and pool locking, a bare
ASGI-to-Redis round trip took about twice the CPU (serving/README.md). This client does only
what the API needs: RESP2 commands and scripts, AUTH and SELECT from the URL, TLS, a deadline
per call that covers connecting, the handshake and the reply, and reconnection on the next call
after a failure. Every failure surfaces as `RedisUnavailable`, which the API answers with a 503
at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from audotics.errors import AudoticsError

Reply = bytes | int | list | None  # what RESP2 replies become (errors raise)


class RedisUnavailable(Exception):
    """Redis is not reachable, or did not answer within the timeout."""


class RedisReplyError(Exception):
    """Redis answered a command with an error reply."""


class _Incomplete(Exception):
    """The buffer ends inside a reply: wait for more bytes."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect, from a redis://, rediss:// or unix:// URL."""

    host: str = "localhost"
    port: int = 6379
    path: str | None = None
    tls: bool = False
    db: int = 0
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        """redis://[[user]:password@]host[:port][/db], rediss:// (TLS) or unix://path[?db=N]."""
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise AudoticsError(f"Redis URL must start with redis://, rediss:// or unix://: {url}")
        unix = parts.scheme == "unix"
        database = parse_qs(parts.query).get("db", [None])[0] or (
            None if unix else parts.path.strip("/")
        )
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or 6379,
            path=unquote(parts.path) if unix else None,
            tls=parts.scheme == "rediss",
            db=int(database or 0),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def describe(self) -> str:
        return self.path or f"{self.host}:{self.port}"


def pack(*args: bytes | str) -> bytes:
    """One command in RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        parts += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(parts)


def parse(buffer: bytes, position: int) -> tuple[Reply | RedisReplyError, int]:
    """The reply that starts at `position`, and where the next one starts."""
    end = buffer.find(b"\r\n", position)
    if end < 0:
        raise _Incomplete
    kind, line, position = buffer[position], buffer[position + 1 : end], end + 2
    if kind == 0x24:  # $ bulk string
        size = int(line)
        if size < 0:
            return None, position
        if len(buffer) < position + size + 2:
            raise _Incomplete
        return buffer[position : position + size], position + size + 2
    if kind == 0x2A:  # * array
        count = int(line)
        if count < 0:
            return None, position
        values = []
        for _ in range(count):
            value, position = parse(buffer, position)
            values.append(value)
        return values, position
    if kind == 0x3A:  # : integer
        return int(line), position
    if kind == 0x2B:  # + simple string
        return line, position
    if kind == 0x2D:  # - error
        return RedisReplyError(line.decode(errors="replace")), position
    raise RedisUnavailable(f"unexpected reply type {chr(kind)!r} from Redis")


class _Connection(asyncio.Protocol):
    """Replies arrive in the order commands were written: a queue of waiting futures, each with
    its deadline (loop time)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout  # for messages: deadlines come with each command
        self.waiting: deque[tuple[asyncio.Future, float]] = deque()
        self.buffer = b""
        self.outgoing: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.closed_because: str | None = None
        self.watchdog: asyncio.TimerHandle | None = None

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        position = 0
        try:
            while self.waiting:
                reply, position = parse(buffer, position)
                future = self.waiting.popleft()[0]
                if not future.done():  # its request may have been cancelled
                    if isinstance(reply, RedisReplyError):
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
        except _Incomplete:
            pass
        except (ValueError, RedisUnavailable) as exc:  # a garbled stream cannot be resynced
            self.abort(f"unreadable reply: {exc}")
            return
        self.buffer = buffer[position:]

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail_all(self.closed_because or f"connection lost ({exc or 'closed by server'})")

    # our side
    @property
    def usable(self) -> bool:
        return self.closed_because is None and self.transport is not None

    def send(self, payload: bytes, deadline: float) -> asyncio.Future:
        future = self.loop.create_future()
        self.waiting.append((future, deadline))
        if self.watchdog is None:
            self.watchdog = self.loop.call_at(deadline, self._watch)
        # Commands of the same event-loop turn leave in one write: fewer system calls.
        if not self.outgoing:
            self.loop.call_soon(self._flush)
        self.outgoing.append(payload)
        return future

    def _flush(self) -> None:
        if self.closed_because is None:
            self.transport.write(b"".join(self.outgoing))  # type: ignore[union-attr]
        self.outgoing.clear()

    def abort(self, reason: str) -> None:
        if self.closed_because is None:
            self.closed_because = reason
        if self.transport is not None:
            self.transport.abort()  # connection_lost fails the waiting requests

    def _watch(self) -> None:
        """Abort when the oldest command is past its deadline (Redis stalled or gone), else
        wake again at its deadline. Replies come in order, so the oldest command is the one to
        watch; one timer serves them all (no timer per request on the hot path), and it fires
        at the deadline itself, not at the next tick of a periodic check."""
        self.watchdog = None
        if not self.waiting or self.closed_because is not None:
            return
        deadline = self.waiting[0][1]
        if deadline <= self.loop.time():
            self.abort(f"no reply within {self.timeout * 1000:.0f} ms")
        else:
            self.watchdog = self.loop.call_at(deadline, self._watch)

    def _fail_all(self, reason: str) -> None:
        self.closed_because = reason
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        while self.waiting:
            future = self.waiting.popleft()[0]
            if not future.done():
                future.set_exception(RedisUnavailable(reason))


class PipelinedRedis:
    """Commands of all concurrent requests share one connection; it is opened on first use
    and again on the first call after it broke, so the API recovers as soon as Redis does."""

    def __init__(self, url: str, *, timeout: float) -> None:
        self.endpoint = Endpoint.from_url(url)
        self.timeout = timeout
        self._connection: _Connection | None = None
        self._connecting: asyncio.Future[_Connection] | None = None

    def deadline(self) -> float:
        """The deadline (loop time) of a call that starts now."""
        return asyncio.get_running_loop().time() + self.timeout

    async def call(self, *args: bytes | str, deadline: float | None = None) -> Reply:
        """One command; `deadline` (default: `timeout` from now) bounds all of it, connecting
        included, so a caller never waits longer than the timeout it was promised."""
        if deadline is None:
            deadline = self.deadline()
        connection = self._connection
        if connection is None or not connection.usable:
            connection = await self._connect(deadline)
        try:
            return await connection.send(pack(*args), deadline)
        except RedisUnavailable as exc:
            raise RedisUnavailable(f"Redis at {self.endpoint.describe()}: {exc}") from None

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.abort("client closed")
            self._connection = None

    async def _connect(self, deadline: float) -> _Connection:
        # Requests that arrive while connecting wait for the same attempt, each until its own
        # deadline at most.
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open(deadline))
            self._connecting.add_done_callback(self._connected)
        try:
            async with asyncio.timeout_at(deadline):
                return await asyncio.shield(self._connecting)
        except (OSError, TimeoutError, RedisReplyError, RedisUnavailable) as exc:
            reason = str(exc) or type(exc).__name__
            if isinstance(exc, TimeoutError):
                reason = f"not connected within {self.timeout * 1000:.0f} ms"
            raise RedisUnavailable(
                f"Redis at {self.endpoint.describe()} is unreachable: {reason}"
            ) from None

    def _connected(self, attempt: asyncio.Future[_Connection]) -> None:
        self._connecting = None
        if not attempt.cancelled() and attempt.exception() is None:
            self._connection = attempt.result()

    async def _open(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        endpoint = self.endpoint

        def protocol() -> _Connection:
            return _Connection(loop, self.timeout)

        async with asyncio.timeout_at(deadline):
            if endpoint.path:
                _, connection = await loop.create_unix_connection(protocol, endpoint.path)
            else:
                tls = ssl.create_default_context() if endpoint.tls else None
                _, connection = await loop.create_connection(
                    protocol, endpoint.host, endpoint.port, ssl=tls
                )
            handshake = []
            if endpoint.password is not None:
                credentials = [endpoint.username] if endpoint.username else []
                auth = pack("AUTH", *credentials, endpoint.password)
                handshake.append(connection.send(auth, deadline))
            if endpoint.db:
                handshake.append(connection.send(pack("SELECT", str(endpoint.db)), deadline))
            try:
                await asyncio.gather(*handshake)
            except BaseException:
                connection.abort("handshake failed")
                raise
        return connection


class Script:
    """A Lua script run by its SHA1 (EVALSHA), loaded again after a Redis restart."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, redis: PipelinedRedis, keys: list[str], args: list[str]) -> Reply:
        deadline = redis.deadline()  # the retry with the source shares it: one timeout in all
        try:
            return await redis.call(
                "EVALSHA", self.sha, str(len(keys)), *keys, *args, deadline=deadline
            )
        except RedisReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            return await redis.call(
                "EVAL", self.source, str(len(keys)), *keys, *args, deadline=deadline
            )
