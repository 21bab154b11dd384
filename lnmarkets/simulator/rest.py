"""aiohttp front of REST v3: fault injection, rate limits, authentication, routing and JSON error bodies."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from lnmarkets.simulator.auth import authenticate_rest, require_scope
from lnmarkets.simulator.context import TRADE_PATH, SimContext
from lnmarkets.simulator.errors import ApiError, bad_request, error_for_status
from lnmarkets.simulator.faults import REST_POST, REST_PRE
from lnmarkets.simulator.rest_handlers import ROUTES, Call, Endpoint, Text
from lnmarkets.simulator.wire import dumps, loads, ms

logger = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(value: object, status: int = 200) -> web.Response:
    return web.Response(text=dumps(value), status=status, content_type="application/json")


def error_response(error: ApiError) -> web.Response:
    response = json_response(error.body(), error.status)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def render(result: object) -> web.Response:
    if isinstance(result, Text):
        return web.Response(text=str(result), content_type="text/plain")
    return json_response(result)


def resolve(method: str, path: str) -> Endpoint:
    methods = ROUTES.get(path.rstrip("/") if path != "/" else path)
    if methods is None:
        raise ApiError("not_found", f"No route for {path}")
    endpoint = methods.get(method)
    if endpoint is None:
        raise ApiError("method_not_allowed", f"{method} is not allowed on {path}")
    return endpoint


def _query(request: web.Request, endpoint: Endpoint) -> dict[str, str]:
    query = request.query
    if len(query) != len(set(query.keys())):
        raise bad_request("Duplicate query parameter")
    unknown = set(query.keys()) - endpoint.query
    if unknown:
        raise bad_request(f"Unexpected query parameter(s): {', '.join(sorted(unknown))}")
    return dict(query)


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


class RestFront:
    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx

    async def handle(self, request: web.Request) -> web.StreamResponse:
        arrival = time.time()
        key = request.headers.get("lnm-access-key")
        status = 500
        try:
            response = await self._handle(request)
            status = response.status
            return response
        finally:
            if key:
                self.ctx.stats.log_request(key, arrival, status)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method, path = request.method, request.path
        try:
            raw = await request.read() if request.body_exists else b""
            text = raw.decode("utf-8")
        except web.HTTPRequestEntityTooLarge:
            return error_response(bad_request("Request body too large"))
        except UnicodeDecodeError:
            return error_response(bad_request("The body must be UTF-8"))
        key = request.headers.get("lnm-access-key")
        self._count(method, path, text)
        refused = await self._before(request, method, path, key)
        if refused is not None:
            return refused
        try:
            response = self._process(request, method, path, text)
        except ApiError as error:
            response = error_response(error)
        except Exception:
            logger.exception("simulator error on %s %s", method, path)
            response = error_response(ApiError("internal", "Internal error"))
        for fault in self.ctx.faults.take(method, path, REST_POST):
            if fault.kind == "accept_then_delay":
                await asyncio.sleep(fault.seconds)
            elif fault.kind == "accept_then_fail_get":
                if key and response.status < 300:
                    self.ctx.faults.fail_reads(key, fault)
            else:
                assert fault.status is not None
                response = error_response(error_for_status(fault.status, fault.retry_after))
        return response

    def _count(self, method: str, path: str, text: str) -> None:
        if method == "POST" and path == TRADE_PATH and text:
            self.ctx.stats.count_client_id(text)
        elif method != "GET" and path.startswith(TRADE_PATH + "/") and text:
            self.ctx.stats.count_trade_request(path, text)

    async def _before(self, request: web.Request, method: str, path: str, key: str | None) -> web.Response | None:
        """The faults that act before processing; a response ends the request unprocessed."""
        if method == "GET":
            failing = self.ctx.faults.read_failure(key)
            if failing is not None:
                return error_response(error_for_status(failing))
        for fault in self.ctx.faults.take(method, path, REST_PRE):
            if fault.kind == "delay":
                await asyncio.sleep(fault.seconds)
                if _gone(request):
                    return web.Response(status=499)
            elif fault.kind == "hold":
                await asyncio.sleep(fault.seconds)  # processed afterwards even if the client has gone
            else:
                assert fault.status is not None
                return error_response(error_for_status(fault.status, fault.retry_after))
        return None

    def _process(self, request: web.Request, method: str, path: str, text: str) -> web.Response:
        ctx = self.ctx
        endpoint = resolve(method, path)
        key = request.headers.get("lnm-access-key")
        if endpoint.scope is None:
            retry = ctx.limiter.check_public(request.remote or "?")
        else:
            retry = ctx.limiter.check_auth(key) if key else None
        if retry is not None:
            raise ApiError("rate_limited", "Too many requests", retry_after=retry)
        account_id = ""
        if endpoint.scope is not None:
            exchange = ctx.exchange
            api_key = authenticate_rest(
                exchange.keys,
                request.headers,
                method,
                request.raw_path,
                text,
                ms(exchange.clock()),
                ctx.config.timestamp_window_ms,
            )
            require_scope(api_key, endpoint.scope)
            account_id = api_key.account_id
        if text and not endpoint.has_body:
            raise bad_request(f"{method} {path} takes no body")
        body = loads(text) if text else None
        return render(endpoint.handler(Call(ctx.exchange, account_id, body, _query(request, endpoint))))


async def not_found(request: web.Request) -> web.StreamResponse:
    return error_response(ApiError("not_found", f"No route for {request.path}"))
