"""A real ``kernelhost serve`` for tests and examples: build the binary,
``init`` a world in a temporary directory, serve it on a free loopback
port, stop it. Only the standard library.

    with LocalServer(genesis={"principals": [{"id": "alice", "balance": 100}]}) as srv:
        alice = srv.client("alice")
        admin = srv.admin()

The binary is ``$KERNELHOST_BIN`` when set, else ``build(repo)`` builds it
with ``go build`` from the repository that holds this file (or
``$KERNELHOST_REPO``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from typing import Any, Dict, List, Mapping, Optional

from .client import Client

__all__ = ["LocalServer", "build", "find_repo", "require_binary"]

_built: Dict[str, str] = {}
_lock = threading.Lock()


def find_repo(start: Optional[str] = None) -> Optional[str]:
    """The kernelhost repository above ``start`` (default: this file), or
    ``$KERNELHOST_REPO``: the directory whose go.mod is module
    github.com/kernelhost/kernelhost."""
    env = os.environ.get("KERNELHOST_REPO")
    if env:
        return env
    d = os.path.abspath(start or os.path.dirname(__file__))
    while True:
        gm = os.path.join(d, "go.mod")
        if os.path.isfile(gm):
            with open(gm, encoding="utf-8") as f:
                if f.readline().strip() == "module github.com/kernelhost/kernelhost":
                    return d
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def build(repo: Optional[str] = None, out_dir: Optional[str] = None) -> str:
    """The kernelhost binary: ``$KERNELHOST_BIN``, else one ``go build``
    of ``repo``'s cmd/kernelhost into ``out_dir`` (a temporary directory),
    once per process."""
    env = os.environ.get("KERNELHOST_BIN")
    if env:
        return env
    repo = repo or find_repo()
    if repo is None:
        raise RuntimeError("no kernelhost repository found: set KERNELHOST_BIN to a kernelhost binary")
    with _lock:
        if repo in _built and os.path.exists(_built[repo]):
            return _built[repo]
        go = shutil.which("go")
        if go is None:
            raise RuntimeError("the go command is needed to build kernelhost (or set KERNELHOST_BIN)")
        out_dir = out_dir or tempfile.mkdtemp(prefix="kernelhost-bin-")
        binary = os.path.join(out_dir, "kernelhost")
        p = subprocess.run([go, "build", "-o", binary, "./cmd/kernelhost"], cwd=repo, capture_output=True,
                           text=True)
        if p.returncode != 0:
            raise RuntimeError(f"go build ./cmd/kernelhost failed:\n{p.stdout}{p.stderr}")
        _built[repo] = binary
        return binary


def require_binary() -> str:
    """The binary for a test: :func:`build`'s, or ``unittest.SkipTest``
    when there is neither ``$KERNELHOST_BIN`` nor a repository and go to
    build one. Under ``KERNELHOST_REQUIRE_PYTHON=1`` (CI) that is a
    failure instead of a skip."""
    import unittest

    if os.environ.get("KERNELHOST_BIN"):
        return os.environ["KERNELHOST_BIN"]
    if shutil.which("go") is None or find_repo() is None:
        if os.environ.get("KERNELHOST_REQUIRE_PYTHON") == "1":
            raise RuntimeError("KERNELHOST_REQUIRE_PYTHON=1: a kernelhost binary is needed "
                               "(set KERNELHOST_BIN, or run from the repository with go installed)")
        raise unittest.SkipTest("no kernelhost binary: set KERNELHOST_BIN, or install go")
    return build()


def cache_root() -> str:
    """The root of the tests' shared compilation caches, as
    internal/testenv.CacheRoot has it: ``$KERNELHOST_TEST_CACHE``, else
    kernelhost/test-wazero-cache in the user's cache directory
    (``$XDG_CACHE_HOME`` or ~/.cache), else a directory per user in the
    temporary directory. Not in the temporary directory when it can be
    anywhere else: ``make test`` removes its temporary directory at the
    end, and the cache is what makes the next run fast."""
    env = os.environ.get("KERNELHOST_TEST_CACHE")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or (os.path.join(os.path.expanduser("~"), ".cache")
                                                 if os.path.isabs(os.path.expanduser("~")) else "")
    if base:
        return os.path.join(base, "kernelhost", "test-wazero-cache")
    return os.path.join(tempfile.gettempdir(), f"kernelhost-test-wazero-cache-{os.getuid()}")


def wazero_cache(binary: str) -> str:
    """The compilation cache the Go tests use for this binary's wazero
    version (internal/testenv.BinaryCacheDir: <cache_root>/<version>), so
    that the genesis Go modules compile once per machine, not once per
    world."""
    version = "dev"
    go = shutil.which("go")
    if go is not None:
        p = subprocess.run([go, "version", "-m", binary], capture_output=True, text=True)
        for line in p.stdout.splitlines():
            f = line.split()
            if len(f) >= 3 and f[0] == "dep" and "github.com/tetratelabs/wazero" in f[1]:
                version = f[2]
    version = re.sub(r"[^A-Za-z0-9.+-]", "_", version)
    d = os.path.join(cache_root(), version)
    os.makedirs(d, mode=0o700, exist_ok=True)
    return d


class LocalServer:
    """A ``kernelhost serve`` child process on a world of its own.

    ``genesis`` is the genesis file's content (docs/genesis.md);
    ``serve_args`` are added to ``serve`` (e.g. the ``--llm-*`` flags).
    After ``start()``: ``url``, ``admin_token`` and ``tokens`` (principal
    id to token). ``stop()`` sends SIGTERM and requires a clean stop within
    ``stop_timeout`` seconds (``kernelhost: stopped``), killing it
    otherwise and raising.
    """

    def __init__(self, genesis: Optional[Mapping[str, Any]] = None, *, binary: Optional[str] = None,
                 serve_args: Optional[List[str]] = None, env: Optional[Mapping[str, str]] = None,
                 genesis_dir: Optional[str] = None, start_timeout: float = 60.0, stop_timeout: float = 15.0) -> None:
        self.genesis = dict(genesis or {})
        self.binary = binary
        self.serve_args = list(serve_args or [])
        self.extra_env = dict(env or {})
        self.genesis_dir = genesis_dir
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.url = ""
        self.admin_token = ""
        self.tokens: Dict[str, str] = {}
        self.tmp = ""
        self.data_dir = ""
        self._proc: Optional[subprocess.Popen] = None
        self._stderr: List[str] = []
        self._reader: Optional[threading.Thread] = None

    def _env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.setdefault("KERNELHOST_WAZERO_CACHE", wazero_cache(self.binary or ""))
        env.update(self.extra_env)
        return env

    def start(self) -> "LocalServer":
        """Builds (or finds) the binary, runs ``init`` and ``serve``, and
        waits for the address in serve's banner."""
        self.binary = self.binary or build()
        self.tmp = tempfile.mkdtemp(prefix="kernelhost-py-")
        self.data_dir = os.path.join(self.tmp, "world")
        # The genesis file's relative paths ("file") resolve from its own
        # directory: genesis_dir, when given, is where it is written.
        gdir = self.genesis_dir or self.tmp
        fd, gen = tempfile.mkstemp(prefix="genesis-", suffix=".json", dir=gdir)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.genesis, f)
        try:
            p = subprocess.run([self.binary, "--data-dir", self.data_dir, "--output", "json", "init",
                                "--genesis", gen], capture_output=True, text=True, env=self._env())
        finally:
            os.unlink(gen)
        if p.returncode != 0:
            raise RuntimeError(f"kernelhost init failed ({p.returncode}): {p.stderr}{p.stdout}")
        out = json.loads(p.stdout)
        self.admin_token = out["admin_token"]
        self.tokens = {pr["id"]: pr["token"] for pr in out.get("principals", [])}
        self._serve()
        return self

    def _serve(self, addr: str = "127.0.0.1:0") -> None:
        assert self.binary is not None
        self._stderr = []
        # A generous request timeout: the first write of a Go module on a
        # cold compilation cache compiles it (seconds, more on a loaded
        # machine) within its request.
        extra = [] if any(a.startswith("--request-timeout") for a in self.serve_args) else ["--request-timeout", "2m"]
        self._proc = subprocess.Popen([self.binary, "--data-dir", self.data_dir, "serve", "--addr", addr,
                                       "--grace", "5s", *extra, *self.serve_args],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      env=self._env())
        banner = threading.Event()
        found: List[str] = []
        proc = self._proc

        def read() -> None:
            assert proc.stderr is not None
            for raw in proc.stderr:
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                self._stderr.append(line)
                m = re.search(r"serving .* on (https?://127\.0\.0\.1:\d+)", line)
                if m and not found:
                    found.append(m.group(1))
                    banner.set()
            banner.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        if not banner.wait(self.start_timeout) or not found:
            self._kill()
            raise RuntimeError("kernelhost serve printed no address: " + "\n".join(self._stderr))
        self.url = found[0]

    def restart(self) -> None:
        """Stops the server and serves the same world again on the same
        port (a client's kept connections and follows break meanwhile)."""
        port = self.url.rsplit(":", 1)[1]
        self._stop_process()
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                self._serve("127.0.0.1:" + port)
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)  # the port is still held by the last one

    @property
    def stderr(self) -> str:
        """What serve wrote on stderr so far."""
        return "\n".join(self._stderr)

    def client(self, principal: str, **kwargs: Any) -> Client:
        """A client with ``principal``'s token."""
        return Client(self.url, self.tokens[principal], **kwargs)

    def admin(self, **kwargs: Any) -> Client:
        """A client with the admin token."""
        return Client(self.url, self.admin_token, **kwargs)

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
            if self._proc.stderr is not None:
                self._proc.stderr.close()

    def _stop_process(self) -> None:
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"serve did not stop within {self.stop_timeout}s of SIGTERM: {self.stderr}")
        if self._reader is not None:
            self._reader.join(5)
        if proc.stderr is not None:
            proc.stderr.close()
        if proc.returncode != 0 or "kernelhost: stopped" not in self.stderr:
            raise RuntimeError(f"serve stopped uncleanly ({proc.returncode}): {self.stderr}")

    def stop(self) -> None:
        """Stops the server (cleanly, or raises) and removes the world."""
        try:
            self._stop_process()
        finally:
            if self.tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)
                self.tmp = ""

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
