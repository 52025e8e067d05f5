"""Test helpers: the shared server binary, a TCP proxy that can lose
answers and cut connections, a scripted HTTP stub, a fake OpenAI-compatible
provider. Standard library only."""

from __future__ import annotations

import http.server
import json
import os
import socket
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from kernelhost import testing

REPO = testing.find_repo(os.path.dirname(os.path.abspath(__file__)))


def binary() -> str:
    """The kernelhost binary for the tests (built once per process); see
    kernelhost.testing.require_binary for when it skips."""
    return testing.require_binary()


def repo_file(*parts: str) -> str:
    """A file of the repository."""
    assert REPO is not None
    return os.path.join(REPO, *parts)


def wait_until(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Polls cond until it holds; the timeout is a liveness bound (the test
    is stuck), not a measurement."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


class Proxy:
    """A TCP proxy to ``upstream`` (host, port) on a loopback port.

    ``lose_answers = n``: the next n connections forward the request but
    close the client's side as soon as the answer starts, so that the
    server applied the request and the client never learns it.
    ``cut()`` breaks every open connection. ``requests`` holds the first
    bytes each client connection sent (its request head)."""

    def __init__(self, upstream: Tuple[str, int]) -> None:
        self.upstream = upstream
        self.lose_answers = 0
        self.requests: List[bytes] = []
        self._socks: List[socket.socket] = []
        self._lock = threading.Lock()
        self._ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._ls.bind(("127.0.0.1", 0))
        self._ls.listen(64)
        self.port = self._ls.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                c, _ = self._ls.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(self.upstream)
            except OSError:
                c.close()
                continue
            with self._lock:
                lose = self.lose_answers > 0
                if lose:
                    self.lose_answers -= 1
                self._socks += [c, u]
            threading.Thread(target=self._pipe, args=(c, u, True, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c, False, lose), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, upward: bool, lose: bool) -> None:
        first = True
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                if upward and first:
                    with self._lock:
                        self.requests.append(b)
                first = False
                if lose:
                    break  # the answer came: drop it and the connection
                dst.sendall(b)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def cut(self) -> None:
        """Breaks every open connection."""
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self._closed = True
        self._ls.close()
        self.cut()


def upstream_of(url: str) -> Tuple[str, int]:
    host, port = url[len("http://"):].rsplit(":", 1)
    return host, int(port)


class Stub:
    """A scripted HTTP server: each request gets the next of ``answers``
    (status, headers, body); ``seen`` records (method, path, headers,
    body)."""

    def __init__(self, answers: List[Tuple[int, Dict[str, str], bytes]]) -> None:
        self.answers = list(answers)
        self.seen: List[Tuple[str, str, Dict[str, str], bytes]] = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _answer(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                stub.seen.append((self.command, self.path, dict(self.headers), body))
                status, headers, out = stub.answers.pop(0) if stub.answers else (500, {}, b"{}")
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if headers.get("Transfer-Encoding") == "chunked":
                    self.end_headers()
                    for i in range(0, len(out), 10):
                        piece = out[i:i + 10]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = _answer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def error_body(code: str, retriable: bool, **extra: Any) -> bytes:
    d = {"ok": False, "error_code": code, "error_category": "resource" if code == "QUOTA_EXCEEDED" else "system",
         "retriable": retriable, "message": code.lower()}
    d.update(extra)
    return json.dumps(d).encode()


class FakeProvider:
    """An OpenAI-compatible chat-completions API: answers every request with
    "hi from <model>" and usage 7 prompt + 3 completion tokens; streams as
    two content chunks, the usage chunk and [DONE]. ``requests`` holds the
    bodies it got."""

    def __init__(self) -> None:
        self.requests: List[Dict[str, Any]] = []
        prov = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                req = json.loads(self.rfile.read(n) or b"{}")
                prov.requests.append(req)
                model = req.get("model", "")
                usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
                if not req.get("stream"):
                    out = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "model": model,
                                      "choices": [{"index": 0, "finish_reason": "stop",
                                                   "message": {"role": "assistant", "content": "hi from " + model}}],
                                      "usage": usage}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for piece in ("hi from ", model):
                    chunk = {"object": "chat.completion.chunk", "model": model,
                             "choices": [{"index": 0, "delta": {"content": piece}}]}
                    self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                    self.wfile.flush()
                last = {"object": "chat.completion.chunk", "model": model, "choices": [], "usage": usage}
                self.wfile.write(b"data: " + json.dumps(last).encode() + b"\n\n")
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def collect(stream: Any, into: List[Any], errors: Optional[List[BaseException]] = None) -> threading.Thread:
    """Runs the iterator ``stream`` in a thread, appending what it yields to
    ``into`` (and what it raises to ``errors``)."""

    def run() -> None:
        try:
            for x in stream:
                into.append(x)
        except BaseException as e:  # noqa: B902 - reported to the test
            if errors is not None:
                errors.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t
