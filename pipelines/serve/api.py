"""The HTTP layer (FastAPI): routes, bearer token, body and batch limits, request ids, structured access logs.

Every answer carries `request_id` (also, once, the `X-Request-ID` header; a caller's own id is kept when it
is a plain token of at most 64 characters); error answers are shaped in pipelines.serve.errors. Log lines are
JSON, one per request (and one per crash, with its stack), and never carry personal data: the person appears
only as the salted hash silver uses (`psn_hash`), a bad field only by its name.
"""

import hmac
import os
import re
import time
import uuid
from contextlib import asynccontextmanager
from typing import Annotated, Any, Optional

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ConfigDict, Field, ValidationError, WithJsonSchema, create_model

from pipelines.serve import claim_time
from pipelines.serve.claim import ClaimError, Problem, build_claim, claim_model
from pipelines.serve.errors import (ApiError, JsonBodyRoute, add_error_handlers, error_response, log_crash,
                                    log_event, problem, request_id_var, too_large)
from pipelines.serve.service import ClaimService, Settings, person_hash

_RID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class BodyLimit:
    """ASGI middleware: a request id for everything (the `X-Request-ID` header of every answer, set once),
    413 for a body over `limit` bytes (Content-Length or counted while streaming), one JSON access-log line
    per request, and the 500 of a crash: answered and logged here, where the request id is still known,
    and not raised further (uvicorn would log a plain-text traceback)."""

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
        t0, status = time.monotonic(), [500, False]          # the answer's status; whether it has begun
        scope["state"]["arrived"] = t0

        async def send_logged(message):
            if message["type"] == "http.response.start":
                status[:] = message["status"], True
                message = {**message, "headers": [*(h for h in message.get("headers", [])
                                                    if h[0].lower() != b"x-request-id"),
                                                  (b"x-request-id", request_id_var.get().encode())]}
            await send(message)

        try:
            declared = headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
                return await self._refuse(too_large(self.limit), scope, receive, send_logged)
            seen = [0]

            async def counted():
                message = await receive()
                seen[0] += len(message.get("body", b""))
                if seen[0] > self.limit:
                    raise too_large(self.limit)
                return message
            try:
                await self.app(scope, counted, send_logged)
            except ApiError as exc:
                await self._refuse(exc, scope, receive, send_logged)
            except Exception as exc:
                log_crash(exc)
                if not status[1]:        # begun answers end unfinished (uvicorn closes the connection)
                    await error_response(500, "internal error / 内部错误")(scope, receive, send_logged)
        finally:
            log_event("access", method=scope.get("method"), path=scope.get("path"), status=status[0],
                      ms=round((time.monotonic() - t0) * 1000, 2), **access)
            request_id_var.reset(token)

    @staticmethod
    async def _refuse(exc: ApiError, scope, receive, send) -> None:
        await error_response(exc.status, exc.detail, exc.headers)(scope, receive, send)


def build_app(service: ClaimService, settings: Settings) -> FastAPI:
    """The FastAPI application of `service`. Refuses to build without a token unless `insecure_local`."""
    if not settings.token and not settings.insecure_local:
        raise ValueError("a bearer token is required (serve.token / FUNDGUARD_SERVE_TOKEN); only --insecure-local "
                         "on 127.0.0.1 runs without one / 需要配置访问令牌")

    @asynccontextmanager
    async def lifespan(app):
        service.start()
        log_event("start", rules=len(service.program.rules), fingerprint=service.program.fingerprint,
                  process=os.getpid())
        yield
        log_event("stop", process=os.getpid())
        service.stop()

    app = FastAPI(title="FundGuard claim check 事中审核", version="1", lifespan=lifespan,
                  description="Checks one settlement against the rule library batch screening uses. "
                              "用与事后筛查相同的规则库审核单次结算。")
    app.state.service = service
    add_error_handlers(app)
    app.router.route_class = JsonBodyRoute      # bodies read before FastAPI's parser (errors.py)
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
            raise ApiError(401, [problem("Authorization", "missing or wrong bearer token / 访问令牌缺失或错误",
                                         ("header", "Authorization"))], {"WWW-Authenticate": "Bearer"})
    return Depends(authorised)


def _validated(model, index: int, raw: Any):
    """A batch's claim as `model`, or the ClaimError naming its fields as a typing error does (`mdtrt.begntime`;
    `claims.1` when it is not an object at all)."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        return ClaimError([Problem(tuple(e["loc"]) or ("claims", index), e["msg"]) for e in exc.errors()])


async def _checked(service: ClaimService, settings: Settings, request: Request, bodies: list) -> list:
    """Each body's answer or ClaimError, in order (a body may be the ClaimError of its schema already); the
    access log gets counts, person hashes, bad fields."""
    claims, results = [], []
    for b in bodies:
        if isinstance(b, ClaimError):
            claims.append(b)
            continue
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
    # each claim is validated on its own (a schema error is its `results[i].error`); only the envelope is the
    # whole request's 422. The schema still documents the claims as ClaimIn (the body of /v1/check).
    RawClaim = Annotated[Any, WithJsonSchema({"$ref": "#/components/schemas/ClaimIn"})]
    BatchIn = create_model("BatchIn", __config__=ConfigDict(extra="forbid"),
                           claims=(list[RawClaim], Field(..., min_length=1, max_length=settings.max_batch)))
    auth = _authorisation(settings)

    # async: a request waiting for its pass holds no thread (see ClaimService.check_many)
    @app.post("/v1/check", dependencies=[auth], summary="check one claim 审核一次结算")
    async def check(body: ClaimIn, request: Request):
        result = (await _checked(service, settings, request, [body]))[0]
        if isinstance(result, ClaimError):
            raise ApiError(422, [p.as_dict() for p in result.problems])
        # the answer is JSON's own types already (ClaimService._answer): FastAPI's encoder would walk it again
        return JSONResponse({**result, "request_id": request_id_var.get()})

    @app.post("/v1/check:batch", dependencies=[auth], summary=f"check up to {settings.max_batch} claims 批量审核")
    async def check_batch(body: BatchIn, request: Request):
        claims = [_validated(ClaimIn, i, raw) for i, raw in enumerate(body.claims)]
        results = await _checked(service, settings, request, claims)
        return JSONResponse({"results": [{"index": i, "error": [p.as_dict() for p in r.problems]}
                                         if isinstance(r, ClaimError) else {"index": i, **r}
                                         for i, r in enumerate(results)],
                             "request_id": request_id_var.get()})


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
