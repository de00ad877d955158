"""uvicorn's HTTP protocol with a deadline and a size limit for the request head.

uvicorn times out idle keep-alive connections, but a client that connects and
then sends nothing, or sends its request line and headers a byte at a time,
holds its connection for ever; enough of them fill `--max-connections` and
every new request gets 503. Here each request head (request line + headers)
must be complete within the timeout, else the client gets 408 and the
connection is closed. The body has its own deadline (`guard.BodyGuard`).

Nor does uvicorn's httptools protocol bound the head: it keeps every header
it is sent, so 8 connections sending 80 MB of headers grew a server from
129 MB to 614 MB. Here a head larger than `max_head_bytes` gets 431 and the
connection is closed (h11, nginx and Node answer the same near 8-64 KiB).
"""

from __future__ import annotations

REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
HEAD_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
MAX_HEAD_BYTES = 65_536


def uvicorn_protocol() -> type:
    """The protocol class uvicorn's http="auto" would pick: httptools if installed, else h11."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return HttpToolsProtocol
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol


def with_head_timeout(base: type, seconds: float, max_head_bytes: int = MAX_HEAD_BYTES) -> type:
    """`base` (a uvicorn HTTP protocol) closing connections whose request head is not complete in `seconds`
    (408) or is larger than `max_head_bytes` (431).

    uvicorn sets `self.cycle` when a request head is complete; a head is
    awaited from the connection's start, and again when bytes arrive after a
    finished response (the next keep-alive request). The head's bytes are
    counted before the parser sees them, up to the blank line that ends it, so
    a head over the limit is refused whether it comes in one read or many.
    """

    class HeadTimeoutProtocol(base):
        _head_timer = None
        _head_after = None  # the cycle (request) after which a new head is awaited; None: the first
        _head_bytes = 0  # bytes of the awaited head received so far
        _head_tail = b""  # the last bytes of it (the start of a blank line split across reads)

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._await_head()

        def data_received(self, data: bytes) -> None:
            if self.cycle is not None and self.cycle.response_complete and self._head_after is not self.cycle:
                self._await_head()  # the first bytes of the next request on this connection
            if self._head_timer is not None and self.cycle is self._head_after and not self._head_fits(data):
                self._head_timer.cancel()
                self._head_timer = None
                self.transport.write(HEAD_TOO_LARGE)
                self.transport.close()
                return
            super().data_received(data)

        def _head_fits(self, data: bytes) -> bool:
            """Count the awaited head's bytes in `data` (up to its blank line, if it ends here); False past the limit."""
            window = self._head_tail + data  # a blank line may be split across reads
            end = window.find(b"\r\n\r\n")
            if end >= 0:
                return self._head_bytes + end + 4 - len(self._head_tail) <= max_head_bytes
            self._head_bytes += len(data)
            self._head_tail = window[-3:]
            return self._head_bytes <= max_head_bytes

        def connection_lost(self, exc) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

        def _await_head(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_after = waiting_after = self.cycle
            self._head_bytes, self._head_tail = 0, b""

            def expire() -> None:
                self._head_timer = None
                if self.cycle is waiting_after and not self.transport.is_closing():  # no new request began
                    self.transport.write(REQUEST_TIMEOUT)
                    self.transport.close()

            self._head_timer = self.loop.call_later(seconds, expire)

    HeadTimeoutProtocol.__name__ = f"HeadTimeout{base.__name__}"
    return HeadTimeoutProtocol
