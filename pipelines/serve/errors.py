"""The HTTP layer's error answers and its reading of JSON bodies, in one shape.

A refused request is answered `{"detail": [{"loc", "field", "msg"}, ...], "request_id"}` (`detail` is a text
only for 500 and 503, which name no field); the request id also comes once as the `X-Request-ID` header (the
access-log middleware in pipelines.serve.api adds it to every answer). A body is read before FastAPI's own
parser, which answers every failure while reading with a bare 400: a Content-Type other than JSON is 415; a
body over the limit, streamed or declared, 413; a body that is not UTF-8 JSON (UTF-16/32 and a UTF-8 BOM are
accepted, as `json.loads` detects them), malformed JSON, nesting deeper than `MAX_DEPTH` or a number of more
than `MAX_DIGITS` digits each 422 with the field `body` and what is wrong.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import traceback
from typing import Any, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from pipelines.serve.dispatch import Overloaded
from pipelines.serve.service import NotReady

log = logging.getLogger("fundguard.serve")
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

#: JSON nesting a body may have (a batch's fee line is at depth 4; a wrong-type value one or two more)
MAX_DEPTH = 32
#: digits a JSON number may have (Python refuses integers over 4,300 digits with a bare ValueError)
MAX_DIGITS = 100
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def _deeper(text: str | bytes) -> bool:
    """Whether the brackets of `text` nest deeper than MAX_DEPTH (UTF-8 bytes: no multi-byte character holds
    one, and bytes.translate keeps them at C speed)."""
    depth = 0
    for b in (text if isinstance(text, bytes) else text.encode()).translate(None, _NOT_BRACKET):
        depth += 1 if b in b"[{" else -1
        if depth > MAX_DEPTH:
            return True
    return False


class ApiError(Exception):
    def __init__(self, status: int, detail: Any, headers: Optional[dict] = None):
        self.status, self.detail, self.headers = status, detail, headers or {}


def problem(field: str, msg: str, loc: tuple | None = None, kind: str | None = None) -> dict:
    """One entry of an error answer's `detail`, shaped as the claim's own problems (claim.Problem)."""
    return {"loc": list(loc or ("body",)), "field": field, "msg": msg, **({"type": kind} if kind else {})}


def log_event(event: str, level: int = logging.INFO, **fields) -> None:
    log.log(level, json.dumps({"event": event, "request_id": request_id_var.get(), **fields}, ensure_ascii=False,
                              default=str))


def log_crash(exc: BaseException) -> None:
    """One JSON line for an exception no handler answered: its type and its stack (file, line, function,
    source line) for it and the exceptions it came from, never its message, which may hold a claim's values."""
    parts, seen = [], exc
    for _ in range(4):
        if seen is None:
            break
        frames = traceback.format_list(traceback.extract_tb(seen.__traceback__))
        parts.append(f"{type(seen).__name__}\n" + "".join(frames))
        seen = seen.__cause__ or seen.__context__
    log_event("error", logging.ERROR, error=type(exc).__name__,
              traceback="--- which led to ---\n".join(reversed(parts)))


def error_response(status: int, detail: Any, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "request_id": request_id_var.get()}, status_code=status,
                        headers=headers or None)


def too_large(limit: int) -> ApiError:
    return ApiError(413, [problem("body", f"request body over {limit} bytes / 请求体过大")])


def _bad_body(msg: str, kind: str) -> ApiError:
    return ApiError(422, [problem("body", msg, kind=kind)])


def _number(text: str, convert):
    if len(text) > MAX_DIGITS and sum(c.isdigit() for c in text) > MAX_DIGITS:
        raise _bad_body(f"a number of {len(text)} characters: at most {MAX_DIGITS} digits / 数字位数过多",
                        "number_too_long")
    return convert(text)


def parse_json(body: bytes) -> Any:
    """The JSON value of a request body, or ApiError(422) naming what is wrong with it."""
    try:
        encoding = json.detect_encoding(body)
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise _bad_body(f"not UTF-8 JSON: byte {exc.start} cannot be decoded (send UTF-8; UTF-16 or a UTF-8 BOM "
                        f"are accepted too) / 请求体须为UTF-8编码的JSON", "not_utf8") from None
    if not text.strip():
        raise _bad_body("empty body: a JSON object is expected / 请求体为空", "json_invalid")
    # the brackets alone first (fast); only when they nest too deep, again without those inside strings
    if _deeper(body if encoding.startswith("utf-8") else text) and _deeper(_STRING.sub('""', text)):
        raise _bad_body(f"nesting deeper than {MAX_DEPTH} / JSON嵌套层数过多", "json_too_deep")
    try:
        return json.loads(text, parse_int=lambda s: _number(s, int), parse_float=lambda s: _number(s, float))
    except json.JSONDecodeError as exc:
        raise _bad_body(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg} / JSON格式错误",
                        "json_invalid") from None
    except RecursionError:       # deep nesting the bracket count missed (brackets in strings): still no 500
        raise _bad_body(f"nesting deeper than {MAX_DEPTH} / JSON嵌套层数过多", "json_too_deep") from None


def _is_json(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))


class JsonBodyRoute(APIRoute):
    """A route whose JSON body is read and parsed here, before FastAPI's parser: its failures (and the 413 of
    a body streamed over the limit) are then answered as themselves, not as FastAPI's bare 400."""

    def get_route_handler(self):
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def read_first(request: Request):
            ctype = request.headers.get("content-type", "")
            if not _is_json(ctype):
                raise ApiError(415, [problem("Content-Type", f"Content-Type must be application/json, not "
                                             f"{ctype[:80] or 'none'!r} / 请求须为JSON", ("header", "Content-Type"))])
            parsed = parse_json(await request.body())
            request._json = parsed          # what Request.json() returns (FastAPI's parser reads it from there)
            return await handler(request)
        return read_first


def add_error_handlers(app: FastAPI) -> None:
    """Every refusal in the usual shape. A crash (any other exception) is answered by the access-log
    middleware, where the request id is still known (see pipelines.serve.api.BodyLimit)."""
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        if isinstance(exc.detail, list):
            request.scope["state"]["access"]["bad_fields"] = [d["field"] for d in exc.detail][:20]
        return error_response(exc.status, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        detail = [{"loc": list(e["loc"]), "field": ".".join(str(x) for x in e["loc"][1:]) or "body",
                   "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        request.scope["state"]["access"]["bad_fields"] = [d["field"] for d in detail][:20]
        return error_response(422, detail)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        path = request.url.path[:200]
        if exc.status_code == 404:
            entry = problem("path", f"no route {path} / 路径不存在", ("path",))
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            entry = problem("method", f"{request.method} not allowed on {path}; allowed: {allowed} / 请求方法不允许",
                            ("method",))
        else:
            entry = problem("request", str(exc.detail), ("request",))
        return error_response(exc.status_code, [entry], exc.headers)

    @app.exception_handler(NotReady)
    async def _not_ready(request: Request, exc: NotReady):
        return error_response(503, str(exc), {"Retry-After": "5"})

    @app.exception_handler(Overloaded)
    async def _overloaded(request: Request, exc: Overloaded):
        request.scope["state"]["access"]["overloaded"] = True
        return error_response(503, str(exc), {"Retry-After": "1"})
