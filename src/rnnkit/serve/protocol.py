"""uvicorn's HTTP protocol with a deadline for the request head.

uvicorn times out idle keep-alive connections, but a client that connects and
then sends nothing, or sends its request line and headers a byte at a time,
holds its connection for ever; enough of them fill `--max-connections` and
every new request gets 503. Here each request head (request line + headers)
must be complete within the timeout, else the client gets 408 and the
connection is closed. The body has its own deadline (`guard.BodyGuard`).
"""

from __future__ import annotations

REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def uvicorn_protocol() -> type:
    """The protocol class uvicorn's http="auto" would pick: httptools if installed, else h11."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return HttpToolsProtocol
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol


def with_head_timeout(base: type, seconds: float) -> type:
    """`base` (a uvicorn HTTP protocol) closing connections whose request head is not complete in `seconds`.

    uvicorn sets `self.cycle` when a request head is complete; a head is
    awaited from the connection's start, and again when bytes arrive after a
    finished response (the next keep-alive request).
    """

    class HeadTimeoutProtocol(base):
        _head_timer = None
        _head_after = None  # the cycle (request) after which a new head is awaited; None: the first

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._await_head()

        def data_received(self, data: bytes) -> None:
            if self.cycle is not None and self.cycle.response_complete and self._head_after is not self.cycle:
                self._await_head()  # the first bytes of the next request on this connection
            super().data_received(data)

        def connection_lost(self, exc) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

        def _await_head(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_after = waiting_after = self.cycle

            def expire() -> None:
                self._head_timer = None
                if self.cycle is waiting_after and not self.transport.is_closing():  # no new request began
                    self.transport.write(REQUEST_TIMEOUT)
                    self.transport.close()

            self._head_timer = self.loop.call_later(seconds, expire)

    HeadTimeoutProtocol.__name__ = f"HeadTimeout{base.__name__}"
    return HeadTimeoutProtocol
