"""What a request body must be before anything parses it into a model: at most ``max_body`` bytes (413),
strict JSON in UTF-8 (400: no ``NaN``, no ``Infinity``), nested at most ``max_depth`` levels (422).

:class:`BodyLimits` is an ASGI middleware: it reads the body as it streams in (refusing at the first byte
past the limit, whatever ``Content-Length`` says), checks it, keeps the parsed JSON in the request's state
(``request.state.json``: the endpoints hand the library the values exactly as sent, the request models only
check their shape) and hands the same bytes on to the application.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from pathway.core.errors import Diagnostic
from pathway.definition.inputs import shown_value
from pathway.service.problems import MEDIA_TYPE, Problem, problem_bytes

__all__ = ["BodyLimits", "json_depth", "parse_json"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def json_depth(value: Any, limit: int) -> int:
    """The nesting depth of a JSON value (a scalar is 0, ``[]`` is 1), counted without recursion; stops
    counting past ``limit``."""
    deepest = 0
    todo: list[tuple[Any, int]] = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        todo.extend((child, depth) for child in children)
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:  # json.loads would keep the last one silently
            raise ValueError(f"duplicate key {shown_value(key)} in an object: which value is meant is not known")
        out[key] = value
    return out


def parse_json(data: bytes, max_depth: int) -> Any:
    """The JSON value of a request body, or :class:`Problem` (400 not strict JSON or an object with a key twice,
    422 nested too deeply)."""
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except RecursionError:
        value = None
        depth_exceeded = True
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise Problem(400, "not-json", "The request body is not JSON",
                      f"the body is not strict JSON in UTF-8: {str(exc)[:200]}",
                      [Diagnostic("body", 0, 0, "PW400", f"not strict JSON in UTF-8: {str(exc)[:200]}")]) from None
    else:
        depth_exceeded = json_depth(value, max_depth) > max_depth
    if depth_exceeded:
        message = f"the body is nested more than {max_depth} levels deep"
        raise Problem(422, "too-deep", "The request body is nested too deeply", message,
                      [Diagnostic("body", 0, 0, "PW412", message)])
    return value


class BodyLimits:
    """Refuse a body over ``max_body`` bytes (413) or that is not strict JSON nested at most ``max_depth``
    levels (400, 422), before the application sees it."""

    def __init__(self, app: ASGIApp, *, max_body: int, max_depth: int):
        self.app, self.max_body, self.max_depth = app, max_body, max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read(scope, receive)
            parsed = parse_json(body, self.max_depth) if body.strip() else None
        except Problem as problem:
            await _answer(send, problem)
            return
        scope.setdefault("state", {})["json"] = parsed
        scope["state"]["json_given"] = bool(body.strip())
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes:
        too_large = Problem(413, "too-large", "The request body is too large",
                            f"the body is larger than {self.max_body} bytes",
                            [Diagnostic("body", 0, 0, "PW412", f"the body is larger than {self.max_body} bytes")])
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    if int(value) > self.max_body:
                        raise too_large
                except ValueError:
                    raise Problem(400, "bad-request", "Bad Content-Length") from None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


async def _answer(send: Send, problem: Problem) -> None:
    data = problem_bytes(problem.body())
    headers = [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(data)).encode())]
    if problem.status == 413:
        headers.append((b"connection", b"close"))  # the rest of the body is not read
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
