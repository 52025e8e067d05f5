"""HTTP/1.1 transport: one kept-alive connection per thread, no redirects,
bounded answers. Only the standard library (http.client)."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple

from .errors import KernelhostError, TransportError

# MAX_ANSWER bounds an answer's body: the largest content (8 MiB by default)
# is 11 MiB as base64 in JSON; anything far larger is not a kernelhost answer.
MAX_ANSWER = 64 << 20

# STALE_AFTER is how long a kept-alive connection may sit idle before a
# request that must not be repeated gets a fresh one instead: the server
# closes idle connections after 2 minutes, and a request sent on a
# connection the server is closing fails without telling whether it
# arrived.
STALE_AFTER = 30.0


def _read_bounded(resp: http.client.HTTPResponse) -> Optional[bytes]:
    """The whole body of resp, or None when it exceeds MAX_ANSWER. Not
    resp.read(MAX_ANSWER + 1): before Python 3.11 that allocates and
    zeroes the whole bound (64 MiB) on every call."""
    if resp.length is not None:  # Content-Length: known before reading
        return resp.read() if resp.length <= MAX_ANSWER else None
    parts, n = [], 0
    while True:
        b = resp.read(1 << 16)
        if not b:
            return b"".join(parts)
        n += len(b)
        if n > MAX_ANSWER:
            return None
        parts.append(b)


@dataclass
class Answer:
    """One HTTP answer, read whole."""

    status: int
    headers: Dict[str, str]  # lower-cased names
    body: bytes


def parse_server(server: str) -> Tuple[str, str, int, str]:
    """Splits a server URL into (scheme, host, port, base path). User
    information, a query or a fragment are refused: a token goes in the
    Authorization header only, never in a URL that gets logged."""
    u = urllib.parse.urlsplit(server)
    if u.scheme not in ("http", "https"):
        raise KernelhostError("INVALID_ARGUMENT", f"server {server!r}: give an http:// or https:// URL",
                              category="input")
    if u.username is not None or u.password is not None or "@" in u.netloc:
        raise KernelhostError("INVALID_ARGUMENT", "server URL: no user information; the token is the credential",
                              category="input")
    if u.query or u.fragment:
        raise KernelhostError("INVALID_ARGUMENT", f"server {server!r}: no query or fragment", category="input")
    if not u.hostname:
        raise KernelhostError("INVALID_ARGUMENT", f"server {server!r}: no host", category="input")
    try:
        port = u.port or (443 if u.scheme == "https" else 80)
    except ValueError as e:
        raise KernelhostError("INVALID_ARGUMENT", f"server {server!r}: {e}", category="input") from None
    return u.scheme, u.hostname, port, u.path.rstrip("/")


class Transport:
    """Sends requests to one server, reusing one connection per thread
    (http.client connections are not thread-safe; a thread keeps its own)."""

    def __init__(self, server: str, token: str, timeout: float, user_agent: str,
                 ssl_context: Optional[ssl.SSLContext] = None) -> None:
        self.scheme, self.host, self.port, self.base = parse_server(server)
        if not isinstance(token, str) or not token or any(c in token for c in "\r\n"):
            raise KernelhostError("INVALID_ARGUMENT", "a token is needed (kh_ and 64 hex digits)", category="input")
        self.token = token
        self.timeout = timeout
        self.user_agent = user_agent
        self.ssl_context = ssl_context
        self._local = threading.local()
        # Every thread's connection, so that close() closes them all.
        self._conns: "set[http.client.HTTPConnection]" = set()
        self._lock = threading.Lock()

    def new_connection(self, timeout: Optional[float] = None) -> http.client.HTTPConnection:
        """A new connection, not yet connected."""
        t = self.timeout if timeout is None else timeout
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=t, context=self.ssl_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=t)

    def headers(self, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
        h = {"Authorization": "Bearer " + self.token, "User-Agent": self.user_agent, "Accept": "application/json"}
        if extra:
            h.update(extra)
        return h

    def path(self, path: str, query: Optional[Mapping[str, str]] = None) -> str:
        p = self.base + path
        if query:
            p += "?" + urllib.parse.urlencode(list(query.items()))
        return p

    def close(self) -> None:
        """Closes every kept connection, of every thread: call it when no
        request is in flight (a thread's next request opens a new one)."""
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            conn.close()

    def __del__(self) -> None:
        # A client dropped without close() closes its connections rather
        # than leave them to the garbage collector's ResourceWarnings.
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def _forget(self, conn: http.client.HTTPConnection) -> None:
        self._local.conn = None
        with self._lock:
            self._conns.discard(conn)

    def request(self, method: str, path: str, query: Optional[Mapping[str, str]] = None,
                body: Optional[bytes] = None, headers: Optional[Mapping[str, str]] = None,
                repeatable: bool = True) -> Answer:
        """Sends one request and reads its whole answer. A connection the
        server closed while it sat idle is replaced and the request resent
        once when ``repeatable`` (resending cannot apply it twice); a
        request that is not repeatable gets a fresh connection when the kept
        one has been idle for STALE_AFTER, so that it is never sent into a
        closing connection. Failures are TransportError, ``sent`` telling
        whether the request may have arrived."""
        target = self.path(path, query)
        hdrs = self.headers(headers)
        if body is not None:
            hdrs["Content-Length"] = str(len(body))
        conn = getattr(self._local, "conn", None)
        last = getattr(self._local, "last", 0.0)
        reused = conn is not None
        if conn is not None and not repeatable and time.monotonic() - last > STALE_AFTER:
            conn.close()
            self._forget(conn)
            conn, reused = None, False
        for attempt in (0, 1):
            if conn is None:
                conn = self.new_connection()
                self._local.conn = conn
                with self._lock:
                    self._conns.add(conn)
            sent = False
            try:
                conn.connect() if conn.sock is None else None
                sent = True
                conn.request(method, target, body=body, headers=hdrs)
                resp = conn.getresponse()
                data = _read_bounded(resp)
                if data is None:
                    conn.close()
                    raise TransportError(f"{method} {path}: the answer exceeds {MAX_ANSWER} bytes", sent=True,
                                         status=resp.status)
                h = {k.lower(): v for k, v in resp.getheaders()}
                if resp.will_close:
                    conn.close()
                self._local.last = time.monotonic()
                return Answer(resp.status, h, data)
            except TransportError:
                self._forget(conn)
                raise
            except (ConnectionRefusedError, socket.gaierror) as e:
                conn.close()
                self._forget(conn)
                raise TransportError(f"{method} {path}: cannot reach {self.host}:{self.port}: {e}",
                                     sent=False) from None
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                self._forget(conn)
                # A kept connection the server had closed: the request never
                # got an answer line. Resend it once on a new connection
                # when that cannot apply it twice.
                stale = isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError))
                if attempt == 0 and reused and stale and repeatable:
                    conn = None
                    continue
                raise TransportError(f"{method} {path}: {type(e).__name__}: {e}", sent=sent) from None
        raise AssertionError("unreachable")  # pragma: no cover
