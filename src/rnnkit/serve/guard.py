"""ASGI middleware that checks a request body before the app sees it.

For POST requests it enforces, in order, answering with a JSON error:
    415  the content type is not application/json (charset, if given, utf-8)
    413  Content-Length over the limit (refused before a byte of the body is read),
         or a body (chunked, no Content-Length) that grows past it while read
    408  the body did not arrive within the timeout (a slow client)
    400  the body is empty or not UTF-8
At most `max_body_bytes` are ever held; the app then reads the body as usual.
"""

from __future__ import annotations

import asyncio
import json

from rnnkit.serve.limits import ServeLimits

BODY_METHODS = ("POST", "PUT", "PATCH")


class ApiError(Exception):
    """An answer other than 200 that a handler gives (the app turns it into error_body JSON)."""

    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


class RequestRejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def error_body(status: int, message: str, details: list | None = None) -> bytes:
    """The JSON error every endpoint answers with: {"error": {"status", "message"[, "details"]}}."""
    error = {"status": status, "message": message}
    if details:
        error["details"] = details
    return json.dumps({"error": error}, ensure_ascii=False).encode("utf-8", "replace")


class BodyGuard:
    """Wraps an ASGI app; see the module docstring."""

    def __init__(self, app, limits: ServeLimits) -> None:
        self.app, self.limits = app, limits

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            return await self.app(scope, receive, send)
        try:
            headers = _headers(scope)
            _check_content_type(headers.get(b"content-type"))
            self._check_length(headers.get(b"content-length"))
            body = await self._read_body(receive)
            if body is None:  # the client went away
                return
            if not body.strip():
                raise RequestRejected(400, 'the request body is empty; send JSON such as {"text": "a review"}')
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise RequestRejected(400, f"the request body is not valid UTF-8 (byte {exc.start}); "
                                           "send JSON encoded as UTF-8") from None
        except RequestRejected as rejected:
            return await _send_error(send, rejected.status, rejected.message)
        await self.app(scope, _replay(body, receive), send)

    def _check_length(self, raw: bytes | None) -> None:
        if raw is None:
            return
        if not raw.isdigit():
            raise RequestRejected(400, "Content-Length must be a whole number of bytes")
        if int(raw) > self.limits.max_body_bytes:
            raise RequestRejected(413, f"the request body is {int(raw)} bytes; the limit is "
                                       f"{self.limits.max_body_bytes} (send fewer or shorter texts)")

    async def _read_body(self, receive) -> bytes | None:
        """The whole body, read chunk by chunk within the timeout and the size limit."""
        chunks, size = [], 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.timeout_seconds
        while True:
            try:
                message = await asyncio.wait_for(receive(), timeout=max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise RequestRejected(408, f"the request body did not arrive within "
                                           f"{self.limits.timeout_seconds:g} s") from None
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limits.max_body_bytes:
                raise RequestRejected(413, f"the request body is larger than the limit of "
                                           f"{self.limits.max_body_bytes} bytes (send fewer or shorter texts)")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _headers(scope) -> dict[bytes, bytes]:
    return {key.lower(): value for key, value in scope.get("headers", [])}


def _check_content_type(raw: bytes | None) -> None:
    media, _, params = (raw or b"").decode("latin-1").partition(";")
    if media.strip().lower() != "application/json":
        shown = media.strip() or "none"
        raise RequestRejected(415, f"the content type is {shown}; send JSON with Content-Type: application/json")
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise RequestRejected(415, f"charset {value.strip()} is not supported; send the JSON as UTF-8")


def _replay(body: bytes, receive):
    """A receive() that hands the app the body already read, then passes through (disconnects)."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_error(send, status: int, message: str) -> None:
    body = error_body(status, message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status in (408, 413):
        headers.append((b"connection", b"close"))  # the rest of the body is not read
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
