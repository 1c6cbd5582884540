"""The HTTP layer (FastAPI): routes, bearer token, body and batch limits, request ids, structured access logs.

Every answer carries `request_id` (also the `X-Request-ID` header; a caller's own id is kept when it is a
plain token of at most 64 characters). Log lines are JSON, one per request, and never carry personal data:
the person appears only as the salted hash silver uses (`psn_hash`), a bad field only by its name.
"""

import contextvars
import hmac
import json
import logging
import re
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any, Optional

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ConfigDict, Field, create_model

from pipelines.serve import claim_time
from pipelines.serve.claim import ClaimError, build_claim, claim_model
from pipelines.serve.dispatch import Overloaded
from pipelines.serve.service import ClaimService, NotReady, Settings, person_hash

log = logging.getLogger("fundguard.serve")
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_RID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ApiError(Exception):
    def __init__(self, status: int, detail: Any, headers: Optional[dict] = None):
        self.status, self.detail, self.headers = status, detail, headers or {}


def log_event(event: str, **fields) -> None:
    log.info(json.dumps({"event": event, "request_id": request_id_var.get(), **fields}, ensure_ascii=False,
                        default=str))


def _error(status: int, detail: Any, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "request_id": request_id_var.get()}, status_code=status,
                        headers={**(headers or {}), "X-Request-ID": request_id_var.get()})


class BodyLimit:
    """ASGI middleware: a request id for everything, 413 for a body over `limit` bytes (Content-Length or
    counted while streaming), one JSON access-log line per request."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        rid = headers.get("x-request-id", "")
        token = request_id_var.set(rid if _RID_RE.match(rid) else uuid.uuid4().hex)
        scope.setdefault("state", {})["access"] = access = {}
        # the request's arrival: its access-log time, and where a claim's wait for a pass counts from
        t0, status = time.monotonic(), [500]
        scope["state"]["arrived"] = t0

        async def send_logged(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id_var.get().encode()))
            await send(message)

        try:
            declared = headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
                return await _error(413, f"request body over {self.limit} bytes / 请求体过大")(scope, receive, send_logged)
            seen = [0]

            async def counted():
                message = await receive()
                seen[0] += len(message.get("body", b""))
                if seen[0] > self.limit:
                    raise ApiError(413, f"request body over {self.limit} bytes / 请求体过大")
                return message
            try:
                await self.app(scope, counted, send_logged)
            except ApiError as exc:
                await _error(exc.status, exc.detail)(scope, receive, send_logged)
        finally:
            log_event("access", method=scope.get("method"), path=scope.get("path"), status=status[0],
                      ms=round((time.monotonic() - t0) * 1000, 2), **access)
            request_id_var.reset(token)


def build_app(service: ClaimService, settings: Settings) -> FastAPI:
    """The FastAPI application of `service`. Refuses to build without a token unless `insecure_local`."""
    if not settings.token and not settings.insecure_local:
        raise ValueError("a bearer token is required (serve.token / FUNDGUARD_SERVE_TOKEN); only --insecure-local "
                         "on 127.0.0.1 runs without one / 需要配置访问令牌")

    @asynccontextmanager
    async def lifespan(app):
        service.start()
        log_event("start", rules=len(service.program.rules), fingerprint=service.program.fingerprint)
        yield
        log_event("stop")
        service.stop()

    app = FastAPI(title="FundGuard claim check 事中审核", version="1", lifespan=lifespan,
                  description="Checks one settlement against the rule library batch screening uses. "
                              "用与事后筛查相同的规则库审核单次结算。")
    app.state.service = service
    _add_error_handlers(app)
    _add_check_routes(app, service, settings)
    _add_info_routes(app, service, settings)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app


def _authorisation(settings: Settings):
    bearer = HTTPBearer(auto_error=False)

    async def authorised(cred: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> None:
        if not settings.token:
            return
        if cred is None or not hmac.compare_digest(cred.credentials.encode(), settings.token.encode()):
            raise ApiError(401, [{"loc": ["header", "Authorization"], "field": "Authorization",
                                  "msg": "missing or wrong bearer token / 访问令牌缺失或错误"}],
                           {"WWW-Authenticate": "Bearer"})
    return Depends(authorised)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return _error(exc.status, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        detail = [{"loc": list(e["loc"]), "field": ".".join(str(x) for x in e["loc"][1:]) or "body",
                   "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        request.scope["state"]["access"]["bad_fields"] = [d["field"] for d in detail][:20]
        return _error(422, detail)

    @app.exception_handler(NotReady)
    async def _not_ready(request: Request, exc: NotReady):
        return _error(503, str(exc), {"Retry-After": "5"})

    @app.exception_handler(Overloaded)
    async def _overloaded(request: Request, exc: Overloaded):
        request.scope["state"]["access"]["overloaded"] = True
        return _error(503, str(exc), {"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):
        log_event("error", error=type(exc).__name__)
        return _error(500, "internal error / 内部错误")


async def _checked(service: ClaimService, settings: Settings, request: Request, bodies: list) -> list:
    """Each body's answer or ClaimError, in order; the access log gets counts, person hashes, bad fields."""
    claims, results = [], []
    for b in bodies:
        try:
            claims.append(build_claim(b))
        except ClaimError as exc:
            claims.append(exc)
    todo = [c for c in claims if not isinstance(c, ClaimError)]
    access = request.scope["state"]["access"]
    answers = iter(await service.check_many(todo, arrived=request.scope["state"].get("arrived"), stats=access)
                   if todo else [])
    for c in claims:
        results.append(c if isinstance(c, ClaimError) else next(answers))
    access["claims"] = len(claims)
    access["psn_hash"] = sorted({person_hash(settings.salt, c.psn_no) for c in todo})[:20]
    access["violations"] = sum(len(r["violations"]) for r in results if isinstance(r, dict))
    access["bad_fields"] = [p.as_dict()["field"] for r in results if isinstance(r, ClaimError)
                            for p in r.problems][:20]
    return results


def _add_check_routes(app: FastAPI, service: ClaimService, settings: Settings) -> None:
    ClaimIn = claim_model(settings.max_lines)
    BatchIn = create_model("BatchIn", __config__=ConfigDict(extra="forbid"),
                           claims=(list[ClaimIn], Field(..., min_length=1, max_length=settings.max_batch)))
    auth = _authorisation(settings)

    # async: a request waiting for its pass holds no thread (see ClaimService.check_many)
    @app.post("/v1/check", dependencies=[auth], summary="check one claim 审核一次结算")
    async def check(body: ClaimIn, request: Request):
        result = (await _checked(service, settings, request, [body]))[0]
        if isinstance(result, ClaimError):
            raise ApiError(422, [p.as_dict() for p in result.problems])
        return {**result, "request_id": request_id_var.get()}

    @app.post("/v1/check:batch", dependencies=[auth], summary=f"check up to {settings.max_batch} claims 批量审核")
    async def check_batch(body: BatchIn, request: Request):
        results = await _checked(service, settings, request, body.claims)
        return {"results": [{"index": i, "error": [p.as_dict() for p in r.problems]} if isinstance(r, ClaimError)
                            else {"index": i, **r} for i, r in enumerate(results)],
                "request_id": request_id_var.get()}


def _add_info_routes(app: FastAPI, service: ClaimService, settings: Settings) -> None:
    @app.get("/v1/rules", dependencies=[_authorisation(settings)], summary="the rules and families checked 规则")
    def rules():
        checked = {r.rule_id for r in service.program.rules}
        return {"rule_set_fingerprint": service.program.fingerprint,
                "rules": [{"rule_id": r.id, "rule_version": r.version, "name": r.name, "family": r.family,
                           "category": r.category, "severity": r.severity, "checked_at_claim_time": r.id in checked}
                          for r in service.catalog.select()],
                "families": [{"family": f, "decidable": d.decidable, "reason": d.reason, "reason_zh": d.reason_zh}
                             for f, d in sorted(claim_time.FAMILIES.items())],
                "request_id": request_id_var.get()}

    @app.get("/healthz", summary="liveness")
    def healthz():
        return {"status": "ok", "request_id": request_id_var.get()}

    @app.get("/readyz", summary="readiness: the lake is loaded")
    def readyz():
        status = service.status()
        return JSONResponse({**status, "request_id": request_id_var.get()}, status_code=200 if status["ready"] else 503)
