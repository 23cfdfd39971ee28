"""The HTTP service: CDS Hooks 2.0 endpoints and a plain JSON API over stored sessions (FastAPI).

    app = create_app(load_pathway("asuc"), SessionStore("sessions.db"), Settings(base_url="https://cds.example"))

CDS Hooks: ``GET /cds-services`` (discovery), ``POST /cds-services/{id}`` (``patient-view``,
``order-select``, ``order-sign``; see :mod:`pathway.service.hooks`), ``POST /cds-services/{id}/feedback``.
JSON API (OpenAPI at ``/openapi.json``): ``POST /sessions`` (a patient, a case or a FHIR Bundle; 201),
``POST /sessions/{id}/events`` (an event, a list of events or FHIR input; the result with ``changes``),
``PUT`` and ``DELETE /sessions/{id}/events/{event_id}`` (amend, retract), ``GET /sessions/{id}``; each answers
``?detail=summary`` without the trace, whose size grows with the course. ``GET /health``.

Every write is load -> apply -> save on the store, conditional on the revision loaded (one patient at a time
per process; another worker's save in between is a 409 and nothing is saved). Errors are problem+json
(:mod:`pathway.service.problems`): 404 no session, 409 a conflict, 413 a body too large, 422 a refused input
with the library's located diagnostics, 503 the store unreachable. Each request is logged as one JSON line
(logger ``pathway.service``) with its route template, status, time and the ids of the rules that fired; no
patient id or value unless ``log_patient_data``.
"""

from __future__ import annotations

import html
import logging
import threading
import time
import urllib.parse
import uuid
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from pathway.core.errors import (
    DefinitionError,
    Diagnostic,
    EngineError,
    InputError,
    PathwayError,
    SessionConflict,
    SessionError,
    TransitionRefused,
)
from pathway.core.text import one_line
from pathway.core.version import __version__
from pathway.definition.inputs import shown_value
from pathway.runtime.api import Pathway
from pathway.runtime.fhir import observe_fhir
from pathway.runtime.session import Session
from pathway.runtime.storebase import SessionNotFound, SessionStore, StoreUnavailable
from pathway.service.auth import TokenPolicy
from pathway.service.feedback import FeedbackLog
from pathway.service.hooks import HOOKS, answer_hook, service_id, services
from pathway.service.limits import BodyLimits
from pathway.service.models import (
    DiscoveryOut,
    EventIn,
    EventsBody,
    FeedbackBody,
    HealthOut,
    HookOut,
    HookRequest,
    ResultOut,
    StartBody,
    StartedOut,
    events_kind,
    start_kind,
)
from pathway.service.problems import MEDIA_TYPE, Problem, problem_bytes
from pathway.service.rulepage import rule_document, rule_html

__all__ = ["Settings", "create_app", "SUMMARY_KEYS", "summary", "LOGGER"]

_T = TypeVar("_T")

LOGGER = "pathway.service"
log = logging.getLogger(LOGGER)

#: what ``GET /sessions/{id}?detail=summary`` keeps of a result
SUMMARY_KEYS = ("pathway", "version", "profile", "patient_id", "day", "state", "state_title", "path",
                "recommendations", "alerts", "proposals", "data_required", "options")


@dataclass
class Settings:
    """How the service runs (``pathway serve``'s options)."""

    #: the service's URL as the EHR calls it: the ``aud`` of its tokens, and the base of card links
    base_url: str = "http://127.0.0.1:8000"
    max_body: int = 1_000_000
    max_depth: int = 64
    #: patient ids, URLs and exception texts in the logs (off: route templates and rule ids only)
    log_patient_data: bool = False
    #: origins allowed by CORS (none: CORS off)
    cors_origins: tuple[str, ...] = ()
    #: allowed token issuers, ``iss`` -> the URLs of its JWK Set (none: no bearer check)
    token_issuers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: where card feedback is kept (:class:`FeedbackLog`)
    feedback: str = ":memory:"
    #: read missing prefetch from the EHR's FHIR server (``fhirServer`` with ``fhirAuthorization``)
    fhir_read_back: bool = False
    #: the time hook cards are for (the session is evaluated at it, nothing recorded): the service's clock;
    #: None gives the cards of the last recorded event (a test replaying a course, say)
    clock: Callable[[], datetime] | None = field(default=lambda: datetime.now(UTC))


#: ``?detail=``: ``full`` results carry the trace; ``summary`` ones do not (its copy grows with the course)
Detail = Annotated[Literal["full", "summary"], Query(description="full: with the trace; summary: without it")]


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The summary projection of a result: where the patient is and what is asked of the team."""
    return {key: result[key] for key in SUMMARY_KEYS if key in result}


class _PatientLocks:
    """One lock per patient id (this process's requests for a patient take turns)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()

    def __call__(self, patient_id: str) -> Any:
        with self._lock:
            lock = self._locks.get(patient_id)
            if lock is None:
                lock = _Lock()
                self._locks[patient_id] = lock
            return lock


class _Lock:
    """A lock that can be weakly referenced (``threading.Lock`` cannot)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


# -- errors -------------------------------------------------------------------------------------------

def _problem(exc: BaseException) -> Problem:
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, SessionNotFound):
        return Problem(404, "not-found", "No such session", str(exc))
    if isinstance(exc, SessionConflict):
        return Problem.of(409, "conflict", "The session was changed by another writer; nothing was saved", exc)
    if isinstance(exc, StoreUnavailable):
        return Problem(503, "store-unavailable", "The session store is unavailable", str(exc)[:500],
                       headers={"Retry-After": "5"})
    if isinstance(exc, InputError):
        if exc.codes and all(code == "PW414" for code in exc.codes):
            return Problem.of(404, "no-such-event", "No event has that id", exc)
        return Problem.of(422, "input-refused", "The input is refused; nothing was applied", exc)
    if isinstance(exc, SessionError):  # a stored row that cannot be trusted
        return Problem.of(409, "stored-session-refused", "The stored session cannot be trusted", exc)
    if isinstance(exc, (TransitionRefused, EngineError, DefinitionError)):
        return Problem(500, "engine", "The pathway could not evaluate the input; nothing was applied", str(exc)[:500])
    return Problem(500, "internal", "Internal error", "an unexpected error; nothing was applied")


def _response(problem: Problem) -> JSONResponse:
    return JSONResponse(problem.body(), status_code=problem.status, media_type=MEDIA_TYPE, headers=problem.headers)


#: what a body (or a part of one) chosen among several shapes is, for a body that is none of them
_SHAPES = {"body": "a JSON object (a patient record, a case with its patient and events, or a FHIR resource or "
                   "Bundle; to add events: an event, a list of events or FHIR)"}


def _validation_problem(exc: RequestValidationError) -> Problem:
    diagnostics = []
    for error in exc.errors()[:20]:
        loc = [str(part) for part in error.get("loc", ())]
        path = ".".join(loc[:1]) + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc[1:])
        kind = str(error.get("type", ""))
        code = "PW400" if kind in ("missing", "union_tag_invalid", "union_tag_not_found", "model_type",
                                   "dict_type", "list_type") else "PW402"
        message = str(error.get("msg", "invalid"))[:300]
        if kind in ("union_tag_not_found", "union_tag_invalid"):  # pydantic names its discriminator function
            message = (f"{_SHAPES.get(path or 'body', 'a JSON object')} is expected here, not "
                       f"{shown_value(error.get('input'))}")
        diagnostics.append(Diagnostic(path or "body", 0, 0, code, message))
    detail = "; ".join(f"{d.file}: {d.message}" for d in diagnostics[:3])
    return Problem(422, "invalid-request", "The request does not have the expected shape", detail, diagnostics)


# -- logging ------------------------------------------------------------------------------------------

_Scope = MutableMapping[str, Any]
_ASGI = Callable[[_Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class _RequestLog:
    """One structured log record per request: method, route template, status, milliseconds, and what the
    endpoint added (``service``, ``rules`` fired, ``cards``); the URL and patient id only when allowed."""

    def __init__(self, app: _ASGI, settings: Settings):
        self.app, self.settings = app, settings

    async def __call__(self, scope: _Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                scope["state"]["responded"] = True
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _value in headers}
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                if b"cache-control" not in names:  # results hold patient data: no proxy or browser keeps them
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        scope.setdefault("state", {})["request_id"] = request_id = str(uuid.uuid4())
        try:
            await self.app(scope, receive, sending)
        except Exception as exc:  # answered here, so no server log prints a traceback with the request's values
            problem = _problem(exc)
            failure: dict[str, Any] = {"event": "error", "request_id": scope["state"].get("request_id"),
                                       "error": type(exc).__name__}
            if self.settings.log_patient_data:
                failure["detail"] = str(exc)[:500]
            log.error("error", extra={"fields": failure})
            if not scope["state"].get("responded"):
                scope["state"]["responded"] = True
                await _send_problem(sending, problem)
        finally:
            route = scope.get("route")
            fields: dict[str, Any] = {
                "event": "request", "request_id": scope["state"].get("request_id"), "method": scope["method"],
                "route": getattr(route, "path", None) or "(no route)", "status": status["code"],
                "ms": round((time.perf_counter() - start) * 1000, 1)}
            fields.update(scope["state"].get("log", {}))
            if self.settings.log_patient_data:
                fields["url"] = scope.get("path")
                fields.update(scope["state"].get("patient_log", {}))
            log.info("request", extra={"fields": fields})


async def _send_problem(send: Any, problem: Problem) -> None:
    data = problem_bytes(problem.body())
    await send({"type": "http.response.start", "status": problem.status,
                "headers": [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


def _note(request: Request, *, patient: dict[str, Any] | None = None, **fields: Any) -> None:
    """Add fields to the request's log record (``patient``: only when patient data may be logged)."""
    state = request.scope.setdefault("state", {})
    state.setdefault("log", {}).update(fields)
    if patient:
        state.setdefault("patient_log", {}).update(patient)


def _fired(before: int, session: Session) -> list[str]:
    return [step["rule"] for step in session.trace(before)]


# -- the application ----------------------------------------------------------------------------------

_PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {MEDIA_TYPE: {"schema": {"type": "object"}}}}
    for status, text in [(401, "bearer token refused"), (404, "no such session or event"),
                         (409, "changed by another writer, or already stored"), (413, "body too large"),
                         (422, "input refused, with the located diagnostics"), (503, "store unavailable")]}


def _documentation_pages(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc``, as FastAPI serves them but with the title escaped: FastAPI writes
    ``app.title`` (the pathway's title, from its rule files) into the page's HTML as it is."""
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
    title = html.escape(one_line(app.title))
    redirect = app.swagger_ui_oauth2_redirect_url

    def openapi_url(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/") + str(app.openapi_url)

    @app.get("/docs", include_in_schema=False)
    async def _swagger_ui(request: Request) -> HTMLResponse:
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return get_swagger_ui_html(openapi_url=openapi_url(request), title=f"{title} - Swagger UI",
                                   oauth2_redirect_url=root + redirect if redirect else None)

    if redirect:
        @app.get(redirect, include_in_schema=False)
        async def _swagger_ui_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def _redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url(request), title=f"{title} - ReDoc")


def create_app(pathway: Pathway, store: SessionStore, settings: Settings | None = None) -> FastAPI:
    """The service for one loaded pathway over one session store."""
    settings = settings or Settings()
    policy = (TokenPolicy(dict(settings.token_issuers), settings.base_url) if settings.token_issuers else None)
    feedback = FeedbackLog(settings.feedback)
    locks = _PatientLocks()
    app = FastAPI(title=f"{pathway.definition.spec.title} ({pathway.id} {pathway.version})", version=__version__,
                  description="CDS Hooks 2.0 services and a JSON API over the patient sessions of a clinical pathway.",
                  responses=_PROBLEM_RESPONSES, docs_url=None, redoc_url=None)
    _documentation_pages(app)

    @app.exception_handler(Problem)
    async def _on_problem(request: Request, exc: Problem) -> JSONResponse:
        return _response(exc)

    @app.exception_handler(RequestValidationError)
    async def _on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _response(_validation_problem(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed"}
        return _response(Problem(exc.status_code, "not-found" if exc.status_code == 404 else "http",
                                 titles.get(exc.status_code, "HTTP error"), str(exc.detail)[:300],
                                 headers=dict(exc.headers or {})))

    def authorize(request: Request) -> None:
        """A dependency of every protected endpoint: it runs before the body is validated, so a caller without
        a valid token learns nothing about the body's shape (401 first)."""
        if policy is not None:
            claims = policy.check(request.headers.get("authorization"), request.url.path)
            _note(request, issuer=claims.get("iss"))

    protected = [Depends(authorize)]
    hook_of = {service_id(pathway, hook): hook for hook in HOOKS}

    def known_service(service: str) -> None:
        """A dependency of the hook endpoints: an unknown service is 404 before its body is validated (422)."""
        if service not in hook_of:
            raise Problem(404, "not-found", "No such CDS service", "see GET /cds-services for the services offered")

    hooked = [*protected, Depends(known_service)]

    def body_json(request: Request) -> Any:
        """The body exactly as sent (parsed once by :class:`BodyLimits`)."""
        return request.scope.get("state", {}).get("json")

    def run(work: Callable[[], _T]) -> _T:
        try:
            return work()
        except (Problem, PathwayError) as exc:
            raise _problem(exc) from None

    # -- health and discovery -------------------------------------------------------------------------

    @app.get("/health", tags=["service"], summary="Is the service up, with which pathway, and is the store reachable?",
             response_model=HealthOut, responses={503: {"model": HealthOut, "description": "the store is unreachable"}})
    def health(request: Request) -> JSONResponse:
        try:
            store.count()
            reachable = True
        except Exception:  # whatever the backend raises, the store is not usable
            reachable = False
        body = {"status": "ok" if reachable else "degraded", "pathway": pathway.id, "version": pathway.version,
                "profile": pathway.definition.profile, "fingerprint": pathway.fingerprint,
                "engine_version": __version__, "store": "reachable" if reachable else "unreachable"}
        return JSONResponse(body, status_code=200 if reachable else 503)

    @app.get("/cds-services", tags=["CDS Hooks"], summary="CDS Hooks discovery", response_model=DiscoveryOut)
    def discovery(request: Request) -> dict[str, Any]:
        return {"services": services(pathway)}


    @app.get("/pathways/{pathway_id}/rules/{rule_id}", tags=["CDS Hooks"],
             summary="A rule with its criteria, evidence and sign-off (the page a card's source.url opens)",
             responses={200: {"content": {"application/json": {}, "text/html": {}}}})
    def rule_page(pathway_id: str, rule_id: str, request: Request) -> Response:
        doc = rule_document(pathway, rule_id) if pathway_id == pathway.id else None
        if doc is None:
            raise Problem(404, "not-found", "No such rule", f"this service runs the pathway {pathway.id}")
        _note(request, rule=rule_id)
        accept = request.headers.get("accept", "")
        if "text/html" in accept and "application/json" not in accept.split(",")[0]:
            return HTMLResponse(rule_html(pathway, doc))
        return JSONResponse(doc)

    @app.post("/cds-services/{service}", dependencies=hooked, tags=["CDS Hooks"], summary="Call a CDS service (a hook)",
              response_model=HookOut,
              responses={404: _PROBLEM_RESPONSES[404]})
    def call_service(service: str, hook_request: HookRequest, request: Request) -> dict[str, Any]:
        hook = hook_of[service]  # known_service answered 404 for any other
        body = body_json(request)
        if hook_request.hook != hook:
            raise Problem(422, "bad-hook", "The request is for another hook",
                          f"the service {service} answers the hook {hook}, not another",
                          [Diagnostic("body.hook", 0, 0, "PW402", f"the service answers the hook {hook}")])
        patient_id = hook_request.context.patientId
        answer, _session = run(lambda: answer_hook(pathway, store, hook, body, base_url=settings.base_url.rstrip("/"),
                                                   read_back=settings.fhir_read_back, lock=locks(patient_id),
                                                   as_of=settings.clock() if settings.clock is not None else None))
        feedback.issued(service, answer.cards)
        _note(request, service=service, rules=answer.rules, cards=len(answer.cards), missing=answer.missing,
              patient={"patient_id": patient_id})
        return {"cards": answer.cards, "systemActions": []}

    @app.post("/cds-services/{service}/feedback", dependencies=hooked, tags=["CDS Hooks"],
              summary="What the clinician did with the cards")
    def call_feedback(service: str, body: FeedbackBody, request: Request) -> JSONResponse:
        run(lambda: feedback.record(service, body_json(request)))
        _note(request, service=service, feedback=len(body.feedback))
        return JSONResponse({}, status_code=200)

    # -- the JSON API ---------------------------------------------------------------------------------

    def load(patient_id: str) -> Session:
        return run(lambda: store.load(pathway, patient_id))

    def change(request: Request, patient_id: str, apply: Callable[[Session], dict[str, Any]]) -> dict[str, Any]:
        """Load the session, apply, save (all or nothing); the result."""
        with locks(patient_id):
            session = load(patient_id)
            before = session.trace_length
            result = run(lambda: apply(session))
            run(lambda: store.save(session))
        _note(request, rules=_fired(before, session), state=result.get("state"), patient={"patient_id": patient_id})
        return result

    @app.post("/sessions", dependencies=protected, status_code=201, tags=["sessions"], summary="Start a patient's session",
              response_model=StartedOut, responses={201: {"description": "the session was started and stored"}})
    def start(body: Annotated[StartBody, Body()], request: Request) -> JSONResponse:
        data = body_json(request)
        kind = start_kind(data)

        def begin() -> tuple[Session, dict[str, Any]]:
            if kind == "fhir":
                return pathway.start_fhir(data)
            if kind == "case":
                session, _results = pathway.run_course(data)
                return session, session.result()
            session = pathway.start(data)
            return session, session.result()

        session, result = run(begin)
        if "/" in session.patient_id or session.patient_id in (".", ".."):
            message = (f"the patient id {session.patient_id!r} cannot be named in this service's URLs "
                       "(/sessions/<patient id>): it holds '/' or is a dot segment; nothing was stored")
            raise Problem(422, "bad-patient-id", "The patient id cannot be used in a URL", message,
                          [Diagnostic({"case": "body.patient.id", "patient": "body.id"}.get(str(kind), "body"), 0, 0,
                                      "PW402", message)])
        with locks(session.patient_id):
            run(lambda: store.save(session))
        _note(request, rules=_fired(0, session), state=result.get("state"), kind=kind,
              patient={"patient_id": session.patient_id})
        location = "/sessions/" + urllib.parse.quote(session.patient_id, safe="")
        return JSONResponse({"id": session.patient_id, "url": location, "result": result}, status_code=201,
                            headers={"Location": location})

    @app.post("/sessions/{patient_id}/events", dependencies=protected, tags=["sessions"], response_model=ResultOut,
              response_model_exclude_unset=True,
              summary="Add events (case-file events or FHIR input): the result with its changes")
    def add_events(patient_id: str, body: Annotated[EventsBody, Body()], request: Request,
                   detail: Detail = "full") -> dict[str, Any]:
        data = body_json(request)
        kind = events_kind(data)

        def apply(session: Session) -> dict[str, Any]:
            if kind == "fhir":
                return observe_fhir(session, data, detail=detail)
            if kind == "event":
                return session.observe(data, detail=detail)
            def each() -> dict[str, Any]:  # all the events or none
                operations = []
                for event in data:
                    result = session.observe(event, detail="summary")
                    operations.append({k: v for k, v in result["changes"].items() if k != "items"})
                return {"operation": "events", "operations": operations}

            return session.as_one(each, detail=detail)

        _note(request, kind=kind)
        return change(request, patient_id, apply)

    def event_id_of(session: Session, text: str) -> str | int:
        """The recorded id that ``text`` (a URL segment) names: a whole number when the event's id is one. Two
        events whose ids read the same in a URL (the number 7 and the text "7") cannot be told apart: 409."""
        named = [entry["id"] for entry in session.recorded_events() if "id" in entry and str(entry["id"]) == text]
        if len(named) > 1:
            raise Problem(409, "ambiguous-event", "The URL names more than one event",
                          f"{len(named)} events have ids that read {text!r} in a URL (the number and the text); "
                          "amend or retract them through the library (Session.amend, Session.retract), which tells "
                          "them apart", [Diagnostic("event_id", 0, 0, "PW416", f"event id {text!r} names {len(named)} "
                                                                              "events (a number and a text)")])
        return named[0] if named else text

    @app.put("/sessions/{patient_id}/events/{event_id}", dependencies=protected, tags=["sessions"], response_model=ResultOut,
             response_model_exclude_unset=True,
             summary="Amend an event by its id: the course evaluated again, the result with its changes")
    def amend(patient_id: str, event_id: str, body: EventIn, request: Request, detail: Detail = "full") -> dict[str, Any]:
        data = body_json(request)
        _note(request, kind="amend")
        return change(request, patient_id, lambda s: s.amend(event_id_of(s, event_id), data, detail=detail))

    @app.delete("/sessions/{patient_id}/events/{event_id}", dependencies=protected, tags=["sessions"],
                response_model=ResultOut, response_model_exclude_unset=True,
                summary="Retract an event entered in error: the course evaluated again without it")
    def retract(patient_id: str, event_id: str, request: Request,
                reason: Annotated[str | None, Query(max_length=2000)] = None, detail: Detail = "full") -> dict[str, Any]:
        _note(request, kind="retract")
        return change(request, patient_id, lambda s: s.retract(event_id_of(s, event_id), reason, detail=detail))

    @app.get("/sessions/{patient_id}", dependencies=protected, tags=["sessions"], summary="The patient's current result")
    def get_session(patient_id: str, request: Request,
                    detail: Detail = "full") -> dict[str, Any]:
        result: dict[str, Any] = run(lambda: load(patient_id).result(detail))
        _note(request, patient={"patient_id": patient_id})
        return summary(result) if detail == "summary" else result

    # the first added is the innermost: the limits' own answers (413, 400, 422) pass through CORS, so a browser
    # client of an allowed origin can read them
    app.add_middleware(BodyLimits, max_body=settings.max_body, max_depth=settings.max_depth)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"], expose_headers=["Location", "X-Request-Id"])
    app.add_middleware(_RequestLog, settings=settings)
    return app

