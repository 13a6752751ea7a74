"""The read API: precomputed recommendations and similar tracks from Redis.

The two /v1 routes are the hot path, a raw ASGI handler: the API key is checked in process,
then ONE Redis round trip (`READ_SCRIPT`) spends a rate-limit token, assigns a user of a running
experiment its arm, reads the `current`
pointer and that version's document; the stored JSON is sent as it is once checked (a limit or
offset slices it). Everything else (/docs, /openapi.json, /healthz, /readyz, /metrics) is
FastAPI. HEAD is answered wherever GET is. Run it with `audotics serve` (uvicorn, several
workers).

Error bodies hold no internals (Redis addresses, its error text): those go to the log, at most
once per `LOG_EVERY_S` per kind, so an outage under load does not write a line per request.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple, NoReturn
from urllib.parse import parse_qsl, unquote

import fastapi_offline
import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from audotics.errors import AudoticsError
from audotics.identifiers import is_uuid
from audotics.settings import Settings, get_settings
from serving import keys
from serving.metrics import UNMATCHED, RequestMetrics
from serving.resp import PipelinedRedis, RedisReplyError, RedisUnavailable, Script
from serving.schema import (
    API_KEY_HEADER,
    MAX_LIMIT,
    MAX_OFFSET,
    ErrorBody,
    Health,
    Ready,
    openapi,
)

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# KEYS: the current pointer, the caller's rate-limit key, the running experiment.
# ARGV: hash name (users or similar), id, rate per second (0: off), burst, version key prefix.
# The rate limit is a token bucket kept as GCRA: one number per key, the time at which its
# bucket will be full again ("theoretical arrival time"), so one GET and one SET per request.
# A user of a running experiment is assigned an arm here, in the same round trip, as
# audotics/assignment.py does: the first 8 hex digits of sha1("<salt>:<user id>") against
# each arm's upper bucket (serving/keys.py, `arms_field`). Replies put the experiment and arm
# ('' when none) before the document, which may be nil.
READ_SCRIPT = Script(
    """
local rate = tonumber(ARGV[3])
if rate > 0 then
  -- Redis 6 replicates scripts verbatim; reading TIME before a write needs effects replication.
  if redis.replicate_commands then redis.replicate_commands() end
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
  local interval = 1000 / rate
  local window = interval * tonumber(ARGV[4])
  local full_at = math.max(tonumber(redis.call('GET', KEYS[2])) or now, now) + interval
  if full_at - now > window then
    return {'limited', tostring(math.ceil(full_at - now - window))}
  end
  redis.call('SET', KEYS[2], tostring(full_at), 'PX', math.max(1, math.ceil(full_at - now)))
end
local version, experiment, arm = nil, '', ''
if ARGV[1] == 'users' then
  local running = redis.call('HMGET', KEYS[3], 'id', 'salt', 'arms')
  if running[1] then
    local bucket = tonumber(string.sub(redis.sha1hex(running[2] .. ':' .. ARGV[2]), 1, 8), 16)
    for name, arm_version, upper in string.gmatch(running[3], '(%S+) (%S+) (%d+)') do
      if bucket < tonumber(upper) then
        version, experiment, arm = arm_version, running[1], name
        break
      end
    end
  end
end
version = version or redis.call('GET', KEYS[1])
if not version then return {'unpublished'} end
local prefix = ARGV[5] .. version
local document = redis.call('HGET', prefix .. ':' .. ARGV[1], ARGV[2])
if document then return {'hit', version, experiment, arm, document} end
if ARGV[1] == 'users' then
  return {'fallback', version, experiment, arm, redis.call('GET', prefix .. ':popular')}
end
return {'missing', version}
"""
)

EXAMPLE_UUID = "123e4567-e89b-12d3-a456-426614174000"
NOT_PUBLISHED = "no model version is published in Redis yet: run `audotics publish`"
REDIS_UNAVAILABLE = "Redis, where the recommendations are stored, did not answer: retry shortly"
DEMO_API_KEY: str = Settings.model_fields["api_keys"].default  # public: it is in the README
ECHO_LIMIT = 80  # characters of a request value an error message repeats
LOG_EVERY_S = 10.0
VALIDATED_DOCUMENTS = 65_536  # content hashes of checked documents each worker keeps
ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}  # FastAPI's own errors
DOCS_ROUTES = {"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc",
               "/openapi.json"}  # fmt: skip
# Swagger UI's and ReDoc's files, served from the fastapi-offline wheel: the docs work offline
# and load nothing from a CDN (FastAPI's defaults fetch them from jsdelivr).
DOCS_ASSETS = "/docs-assets"  # also the metrics label of every asset
DOCS_ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"


class ReadRoute(NamedTuple):
    template: str  # the metrics label
    hash_name: str  # the version hash the id keys (see serving/keys.py)
    id_name: str
    pages: bool  # accepts offset


ROUTES = {
    (b"users", b"recommendations"): ReadRoute(
        "/v1/users/{user_id}/recommendations", "users", "user_id", pages=True
    ),
    (b"tracks", b"similar"): ReadRoute("/v1/tracks/{track_id}/similar", "similar", "track_id",
                                       pages=False),
}  # fmt: skip


class HttpError(Exception):
    """A clear JSON 4xx/5xx answer (format: `schema.ErrorBody`)."""

    def __init__(
        self, status: int, error: str, message: str, *, parameter: str | None = None,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.headers = headers
        self.body = error_body(error, message, parameter)


def error_body(error: str, message: str, parameter: str | None = None) -> bytes:
    fields = {"error": error, "message": message}
    if parameter is not None:
        fields["parameter"] = parameter
    return orjson.dumps(fields)


def echo(text: str) -> str:
    """`text` from the request, quoted for an error message and cut to `ECHO_LIMIT` characters:
    a path or value can be megabytes long, and an error body must stay small."""
    if len(text) <= ECHO_LIMIT:
        return repr(text)
    return f"{text[:ECHO_LIMIT]!r}... (cut: {len(text):,} characters in all)"


class QuietLog:
    """Warnings of a recurring failure, at most one per `seconds` per kind, each saying how many
    like it were left out since the previous one."""

    def __init__(self, seconds: float = LOG_EVERY_S) -> None:
        self.seconds = seconds
        self.last: dict[str, float] = {}
        self.left_out: dict[str, int] = {}

    def warning(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self.last.get(kind, -math.inf) < self.seconds:
            self.left_out[kind] = self.left_out.get(kind, 0) + 1
            return
        self.last[kind] = now
        if left_out := self.left_out.pop(kind, 0):
            message += f" ({left_out} more like it in the last {self.seconds:g} s)"
        log.warning(message, *args)


async def respond(
    send: Send, status: int, body: bytes, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _retry_after(seconds: int) -> tuple[tuple[bytes, bytes], ...]:
    return ((b"retry-after", b"%d" % seconds),)


class FailedKeyThrottle:
    """Failed API-key attempts (unknown or missing key) per client address, in this worker's
    memory: a token bucket each (GCRA, as the per-key limit in Redis), so past a burst a guesser
    gets `rate` tries a second, answered 429 in between.

    An address past its budget gets 429s even with a valid key it has not used before: were
    such a key answered, a guesser would learn which guess was right. The keys an address has
    used successfully keep working, so clients behind the same address as a guesser (a NAT, a
    proxy) are not locked out. Both tables are bounded: the oldest entries are dropped first."""

    def __init__(self, rate: float, burst: int, capacity: int) -> None:
        self.interval = 1 / rate if rate > 0 else 0.0  # 0: off
        self.window = self.interval * burst
        self.capacity = capacity
        self.full_at: dict[str, float] = {}  # address -> when its bucket is full again
        self.known: dict[tuple[str, str], None] = {}  # (address, key's bucket): succeeded

    def failed(self, address: str) -> int:
        """Spend one of `address`'s tries: 0 if it had one, else the seconds until it has."""
        if not self.interval:
            return 0
        now = time.monotonic()
        # Re-inserted, so that the addresses dropped when full are the least recently failing.
        full_at = max(self.full_at.pop(address, now), now) + self.interval
        if full_at - now > self.window:
            self.full_at[address] = full_at - self.interval  # a refused try costs nothing
            return math.ceil(full_at - now - self.window)
        self.full_at[address] = full_at
        if len(self.full_at) > self.capacity:
            del self.full_at[next(iter(self.full_at))]
        return 0

    def wait(self, address: str, bucket: str) -> int:
        """0 if a valid key may be used from `address`, else the seconds to wait; notes a key
        that may. The hot path: a dictionary write, and a look-up once any try has failed."""
        if self.full_at and (address, bucket) not in self.known:
            full_at = self.full_at.get(address)
            now = time.monotonic()
            if full_at is not None and full_at + self.interval - now > self.window:
                return math.ceil(full_at + self.interval - now - self.window)
        if self.interval:
            self.known[address, bucket] = None
            if len(self.known) > self.capacity:
                del self.known[next(iter(self.known))]
        return 0


class ReadApi:
    """The /v1 routes. Returns the route label and status of each answer for the metrics."""

    def __init__(self, settings: Settings, redis: PipelinedRedis, metrics: RequestMetrics) -> None:
        self.redis = redis
        self.metrics = metrics
        # Each key's rate-limit key is named by a digest: API keys never appear in Redis.
        self.buckets = {
            key.encode(): keys.rate_limit_key(hashlib.sha256(key.encode()).hexdigest()[:16])
            for key in settings.api_key_set
        }
        self.rate = settings.api_rate_limit_rps
        self.burst = settings.api_rate_limit_burst
        self.limit_args = [repr(self.rate), str(self.burst), keys.VERSION_PREFIX]
        self.failed_keys = FailedKeyThrottle(
            settings.api_failed_key_rps, settings.api_failed_key_burst,
            settings.api_failed_key_clients,
        )  # fmt: skip
        self.quiet_log = QuietLog()
        # Hashes of stored documents found servable: each is parsed once, not per request.
        self.valid_documents: set[int] = set()

    async def __call__(self, scope: Scope, send: Send) -> tuple[str, int]:
        # The raw path: an id holding an encoded "/" stays one segment (and gets a clear 422).
        raw_path = scope.get("raw_path") or scope["path"].encode()
        segments = raw_path.split(b"/")
        route = ROUTES.get((segments[2], segments[4])) if len(segments) == 5 else None
        label = route.template if route else UNMATCHED
        try:
            if route is None:
                raise HttpError(404, "not_found", f"no route {echo(scope['path'])}; see /docs")
            body = await self._answer(scope, route, segments[3])
            await respond(send, 200, body)
            return label, 200
        except HttpError as exc:
            await respond(send, exc.status, exc.body, exc.headers)
            return label, exc.status
        except Exception:
            log.exception("%s failed", echo(scope["path"]))
            await respond(send, 500, error_body("internal_error", "unexpected server error"))
            return label, 500

    async def _answer(self, scope: Scope, route: ReadRoute, raw_id: bytes) -> bytes:
        if scope["method"] != "GET":  # HEAD arrives as GET (see ServingApp)
            raise HttpError(405, "method_not_allowed",
                            f"{echo(scope['method'])} is not allowed on {route.template}: use "
                            "GET or HEAD", headers=((b"allow", b"GET, HEAD"),))  # fmt: skip
        bucket = self._bucket(scope)
        entity_id = _uuid(route.id_name, raw_id)
        limit, offset = _window(scope["query_string"], route)
        try:
            reply = await READ_SCRIPT(
                self.redis,
                [keys.CURRENT, bucket, keys.EXPERIMENT],
                [route.hash_name, entity_id, *self.limit_args],
            )
        except (RedisUnavailable, RedisReplyError) as exc:
            self.quiet_log.warning("redis", "%s: answered 503", exc)
            raise HttpError(503, "redis_unavailable", REDIS_UNAVAILABLE,
                            headers=_retry_after(1)) from None  # fmt: skip
        outcome = reply[0]
        if outcome == b"hit" or (outcome == b"fallback" and len(reply) == 5):
            fields = {route.id_name: entity_id}
            if route.hash_name == "users":  # which experiment and arm served it, or nulls
                fields.update(experiment=reply[2].decode() or None, arm=reply[3].decode() or None)
            try:
                return self._document(fields, reply[4], limit, offset)
            except UnusableDocument as exc:
                self._invalid(route, entity_id, reply[1], str(exc))
        if outcome == b"limited":
            seconds = math.ceil(int(reply[1]) / 1000)
            self.metrics.throttled.labels("rate_limit").inc()
            raise HttpError(
                429, "rate_limited",
                f"rate limit of {self.rate:g} requests/s (burst {self.burst}) for this API key "
                f"exceeded: retry in {seconds} s",
                headers=_retry_after(seconds),
            )  # fmt: skip
        if outcome == b"missing":
            raise HttpError(404, "not_found",
                            f"track {entity_id} has no similar tracks in model version "
                            f"{reply[1].decode()}", parameter=route.id_name)  # fmt: skip
        if outcome == b"unpublished":
            raise HttpError(503, "not_ready", NOT_PUBLISHED, headers=_retry_after(5))
        raise HttpError(503, "incomplete_version",
                        f"model version {reply[1].decode()} has no popular list in Redis: publish "
                        "it again", headers=_retry_after(5))  # fmt: skip

    def _bucket(self, scope: Scope) -> str:
        """The rate-limit key of the request's API key; 401 without a known key, 429 once the
        client's address has failed too often (see `FailedKeyThrottle`)."""
        client = scope.get("client")
        address = client[0] if client else ""
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                bucket = self.buckets.get(value)
                if bucket is None:
                    self._failed(address, f"unknown API key in {API_KEY_HEADER}")
                elif seconds := self.failed_keys.wait(address, bucket):
                    self._throttled(seconds)
                return bucket
        self._failed(address, f"missing {API_KEY_HEADER} header: every /v1 route needs an API key")

    def _failed(self, address: str, message: str) -> NoReturn:
        if seconds := self.failed_keys.failed(address):
            self._throttled(seconds)
        raise HttpError(401, "unauthorized", message,
                        headers=((b"www-authenticate", b"ApiKey"),))  # fmt: skip

    def _throttled(self, seconds: int) -> NoReturn:
        self.metrics.throttled.labels("failed_keys").inc()
        raise HttpError(
            429, "too_many_failed_keys",
            f"too many requests without a valid API key from this address: retry in {seconds} s",
            headers=_retry_after(seconds),
        )  # fmt: skip

    def _document(
        self, fields: dict[str, str | None], stored: bytes, limit: int | None, offset: int
    ) -> bytes:
        """The stored document with `fields` (the requested id first) in front; sliced only if
        asked to."""
        if limit is None and offset == 0:
            digest = hash(stored)  # 64 bits: a corrupt document passing by collision is unlikely
            if digest not in self.valid_documents:
                _parsed(stored)
                if len(self.valid_documents) >= VALIDATED_DOCUMENTS:
                    self.valid_documents.clear()  # bounded memory; hot documents come back soon
                self.valid_documents.add(digest)
            return orjson.dumps(fields)[:-1] + b"," + stored[1:]
        document = _parsed(stored)
        end = None if limit is None else offset + limit
        return orjson.dumps({**fields, **document, "items": document["items"][offset:end]})

    def _invalid(self, route: ReadRoute, entity_id: str, version: bytes, reason: str) -> NoReturn:
        self.metrics.invalid_documents.labels(reason).inc()
        self.quiet_log.warning(
            "document", "the stored document of %s %s in model version %s is unusable (%s): "
            "answered 500; publish the version again", route.id_name, entity_id,
            version.decode(errors="replace"), reason,
        )  # fmt: skip
        raise HttpError(500, "invalid_document",
                        f"the stored list for this {route.id_name} is unreadable: the operators "
                        "have it in the server log")  # fmt: skip


class UnusableDocument(Exception):
    """A stored document that breaks the value contract; the message is the metric's reason."""


def _parsed(stored: bytes) -> dict[str, Any]:
    """`stored` if it is a document of the contract: a non-empty JSON object with `{` first
    (the id is spliced in after it) and an item list."""
    try:
        document = orjson.loads(stored)
    except orjson.JSONDecodeError:
        raise UnusableDocument("not_json") from None
    if not stored.startswith(b"{") or not document:
        raise UnusableDocument("not_an_object")
    if not isinstance(document.get("items"), list):
        raise UnusableDocument("no_item_list")
    return document


def _uuid(name: str, raw: bytes) -> str:
    text = unquote(raw.decode("latin-1")) if b"%" in raw else raw.decode("latin-1")
    if not is_uuid(text):
        raise HttpError(422, "invalid_parameter",
                        f"{name} must be a UUID such as {EXAMPLE_UUID}; got {echo(text)}",
                        parameter=name)  # fmt: skip
    return text.lower()


def _window(query: bytes, route: ReadRoute) -> tuple[int | None, int]:
    """limit (None: the whole list) and offset from the query string; others are ignored."""
    limit, offset = None, 0
    if query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if name == "limit":
                limit = _bounded(name, value, 1, MAX_LIMIT)
            elif name == "offset" and route.pages:
                offset = _bounded(name, value, 0, MAX_OFFSET)
    return limit, offset


def _bounded(name: str, value: str, low: int, high: int) -> int:
    # Length first: int() of thousands of digits is slow, and past 4,300 it raises.
    if not (len(value) <= 20 and value.isascii() and value.isdigit() and low <= int(value) <= high):
        raise HttpError(422, "invalid_parameter",
                        f"{name} must be a whole number from {low} to {high}; got {echo(value)}",
                        parameter=name)  # fmt: skip
    return int(value)


class ServingApp:
    """The ASGI entry point: /v1 to the hot path, the rest to FastAPI; times every request.
    HEAD is served as GET without the body (RFC 9110), wherever GET is."""

    def __init__(self, read_api: ReadApi, docs: FastAPI, metrics: RequestMetrics) -> None:
        self.read_api = read_api
        self.docs = docs
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan
            await self.docs(scope, receive, send)
            return
        started = time.perf_counter()
        route, status = UNMATCHED, 500  # what is recorded if the request fails unanswered
        if scope["method"] == "HEAD":
            scope, send = {**scope, "method": "GET"}, _without_body(send)
        try:
            if scope["path"].startswith("/v1/"):
                route, status = await self.read_api(scope, send)
            else:
                route = _docs_label(scope["path"])
                status = await self._docs_request(scope, receive, send)
        finally:
            self.metrics.observe(route, status, time.perf_counter() - started)

    async def _docs_request(self, scope: Scope, receive: Receive, send: Send) -> int:
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.docs(scope, receive, send_noting_status)
        return status


def _docs_label(path: str) -> str:
    if path in DOCS_ROUTES:
        return path
    return DOCS_ASSETS if path.startswith(f"{DOCS_ASSETS}/") else UNMATCHED


def _without_body(send: Send) -> Send:
    """`send` with the body left out, headers (content-length too) kept: a HEAD answer."""

    async def send_headers_only(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return send_headers_only


def _docs_app(redis: PipelinedRedis, metrics: RequestMetrics, quiet_log: QuietLog) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        await redis.close()

    app = FastAPI(
        title="Audotics read API",
        version="1",
        description=(
            "Precomputed music recommendations and similar tracks, served from Redis. Every "
            f"/v1 route needs an API key in the `{API_KEY_HEADER}` header and is rate limited "
            "per key. Errors are JSON: `error` (a code), `message`, and `parameter` when one is "
            "at fault."
        ),
        lifespan=lifespan,
        docs_url=None,  # served below, with local assets
        redoc_url=None,
    )
    app.mount(DOCS_ASSETS, StaticFiles(directory=DOCS_ASSETS_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,  # fonts.googleapis.com: offline, the page's own fonts
        )
        # ReDoc's bundle links its footer logo from cdn.redoc.ly: the browser must not ask.
        page.headers["content-security-policy"] = "img-src 'self' data:"
        return page

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = ERROR_CODES.get(exc.status_code, "http_error")
        not_found = f"no route {echo(request.url.path)}; see /docs"
        message = not_found if code == "not_found" else exc.detail
        return JSONResponse({"error": code, "message": message}, exc.status_code, exc.headers)

    @app.get("/healthz", response_model=Health, summary="The process is up (Redis not checked).")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        response_model=Ready,
        responses={503: {"model": ErrorBody}},
        summary="Redis answers and a model version is published.",
    )
    async def readyz() -> Any:
        try:
            version = await redis.call("GET", keys.CURRENT)
        except (RedisUnavailable, RedisReplyError) as exc:
            quiet_log.warning("redis", "%s: /readyz answered 503", exc)
            return JSONResponse({"error": "redis_unavailable", "message": REDIS_UNAVAILABLE}, 503)
        if version is None:
            return JSONResponse({"error": "not_ready", "message": NOT_PUBLISHED}, 503)
        # A version published before these fields existed has neither: null, not an error.
        times = await redis.call(
            "HMGET", keys.manifest_key(version.decode()), "generated_at", "published_at"
        )
        generated_at, published_at = (None if t is None else t.decode() for t in times)
        return {"status": "ready", "model_version": version.decode(),
                "generated_at": generated_at, "published_at": published_at}  # fmt: skip

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        summary="Prometheus metrics: request counts and latency by route and status.",
    )
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.exposition(), media_type="text/plain; version=0.0.4")

    app.openapi = lambda: openapi(app)  # type: ignore[method-assign]
    return app


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host`; a name other than localhost counts as not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_api_keys(settings: Settings, host: str) -> None:
    """Refuse to serve without a key, or with the public demo key where others can reach the
    API (`host` is the bind address)."""
    if not settings.api_key_set:
        raise AudoticsError("AUDOTICS_API_KEYS holds no key: set at least one (comma-separated)")
    if DEMO_API_KEY in settings.api_key_set and not is_loopback(host):
        raise AudoticsError(
            f"AUDOTICS_API_KEYS holds the demo key {DEMO_API_KEY!r}, which is public, and the "
            f"read API would listen on {host}, which is not a loopback address: set "
            "AUDOTICS_API_KEYS to keys of your own (comma-separated), or bind to 127.0.0.1 "
            "(AUDOTICS_API_HOST or --host)"
        )


def create_app(settings: Settings | None = None) -> ServingApp:
    """The app; uvicorn calls it with no arguments in each worker (settings from the env).
    The demo-key check trusts AUDOTICS_API_HOST to be the bind address, as `audotics serve`
    makes it."""
    settings = settings or get_settings()
    require_api_keys(settings, settings.api_host)
    if DEMO_API_KEY in settings.api_key_set:
        # Not the key itself: log masking blanks API keys, and the setting's name says it.
        log.warning(
            "AUDOTICS_API_KEYS holds the public demo key (its default): accepted on %s, a "
            "loopback address, but set keys of your own before the API listens anywhere else",
            settings.api_host,
        )
    redis = PipelinedRedis(settings.redis_dsn, timeout=settings.api_redis_timeout_ms / 1000)
    metrics = RequestMetrics()
    read_api = ReadApi(settings, redis, metrics)
    docs = _docs_app(redis, metrics, read_api.quiet_log)
    return ServingApp(read_api, docs, metrics)
