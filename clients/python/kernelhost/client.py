"""The kernelhost HTTP client: :class:`Client`.

One client speaks for one token. Every action is sent with a ``request_id``
(the caller's, or a fresh one), so that the retries the client makes after a
lost answer or a retriable refusal can never apply an action twice: the
server answers a repeated id with the first result (``replayed``).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import ssl
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from . import sse
from ._transport import Answer, Transport
from .errors import KernelhostError, TransportError
from .models import (
    ArtifactsPage,
    ChatCompletion,
    ConsentsPage,
    CreatedPrincipal,
    Event,
    EventsPage,
    Explanation,
    Grant,
    LLMConsent,
    Principal,
    PrincipalsPage,
    PrincipalView,
    Quotas,
    QuotaStatus,
    Result,
    RightsPage,
    StandingsPage,
    Totals,
)

__all__ = ["Client", "EventStream", "RetryPolicy", "JUDGED_KINDS", "KINDS", "ROUTES"]

__version__ = "0.1.0"

# JUDGED_KINDS are the action kinds an access contract judges: they may
# carry max_cost, the most the caller agrees to pay (docs/http.md,
# "Spending limits"). The other kinds are judged by the kernel alone, cost
# no contract price, and refuse the field.
JUDGED_KINDS = frozenset({"read", "write", "edit", "delete", "set_contract", "invoke"})

# KINDS are every action kind of POST /v1/actions.
KINDS = JUDGED_KINDS | frozenset({
    "transfer", "grant_consent", "revoke_consent", "transfer_quota", "consume_quota", "grant_standing",
    "revoke_standing", "set_spending_limit", "grant_llm_consent", "revoke_llm_consent", "mint_right",
    "transfer_right", "split_right", "merge_rights", "redeem_right",
})

# ROUTES maps every route of the server's OpenAPI document (GET
# /v1/openapi.json: method and path) to the Client method that calls it;
# a test holds it equal to the document, so that a route added to the
# server without a method here fails it.
ROUTES: Dict["tuple[str, str]", str] = {
    ("GET", "/healthz"): "healthz",
    ("GET", "/metrics"): "metrics",
    ("GET", "/v1/openapi.json"): "openapi",
    ("POST", "/v1/actions"): "act",
    ("POST", "/v1/explain"): "explain",
    ("GET", "/v1/artifacts"): "list_artifacts",
    ("GET", "/v1/artifacts/{id}"): "get_artifact",
    ("PUT", "/v1/artifacts/{id}"): "put_artifact",
    ("GET", "/v1/principals"): "principals",
    ("POST", "/v1/principals"): "create_principal",
    ("GET", "/v1/principals/{id}"): "principal",
    ("POST", "/v1/mint"): "mint",
    ("GET", "/v1/totals"): "totals",
    ("GET", "/v1/snapshot"): "snapshot",
    ("GET", "/v1/events"): "events",
    ("GET", "/v1/events/{seq}"): "event",
    ("GET", "/v1/quotas"): "quotas",
    ("POST", "/v1/quotas/transfer"): "quota_transfer",
    ("GET", "/v1/principals/{id}/quotas"): "principal_quotas",
    ("PUT", "/v1/principals/{id}/quotas/{resource}"): "set_quota",
    ("POST", "/v1/llm/chat"): "llm_chat",
    ("GET", "/v1/rights"): "rights",
    ("GET", "/v1/principals/{id}/rights"): "principal_rights",
    ("GET", "/v1/principals/{id}/consents"): "consents",
    ("GET", "/v1/principals/{id}/consents/{contract}"): "consent",
    ("GET", "/v1/principals/{id}/standings"): "standings",
    ("GET", "/v1/principals/{id}/llm_consents/{principal}"): "llm_consent",
    ("POST", "/v1/principals/{id}/tokens"): "create_token",
    ("GET", "/v1/principals/{id}/tokens"): "tokens",
    ("DELETE", "/v1/principals/{id}/tokens/{name}"): "revoke_token",
}

# SNAPSHOT_MAGIC starts a snapshot file (store.Dump); SNAPSHOT_CONTENT_TYPE
# is GET /v1/snapshot's media type.
SNAPSHOT_MAGIC = b"KHSNAP1\n"
SNAPSHOT_CONTENT_TYPE = "application/vnd.kernelhost.snapshot"

# The id rule of the README ("Ids"): 1-128 bytes of letters, digits and
# - _ . : @ in segments separated by single '/', none empty, '.' or '..'.
_ID = re.compile(r"[A-Za-z0-9_.:@-]+(/[A-Za-z0-9_.:@-]+)*")
_REQUEST_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")


def _check_id(what: str, v: str) -> str:
    """Refuses, before anything is sent, an id that is not canonical: in a
    path it could name another route (``x/quotas``) or be cleaned into
    another artifact by something on the way."""
    if not isinstance(v, str) or len(v.encode()) > 128 or not _ID.fullmatch(v) or \
            any(s in (".", "..") for s in v.split("/")):
        raise KernelhostError("INVALID_ARGUMENT", f"{what} {v!r} is not an id: 1-128 bytes of letters, digits and "
                                                  "- _ . : @ in segments separated by single /", category="input")
    return v


def _segment(what: str, v: str) -> str:
    """An id as one path segment ({id} of a route): its slashes escaped."""
    return urllib.parse.quote(_check_id(what, v), safe=":@")


@dataclass
class RetryPolicy:
    """When the client repeats a request.

    A request is repeated when its answer says ``retriable`` (429
    ``QUOTA_EXCEEDED`` that waiting cures, 503 ``UNAVAILABLE``, 409
    ``CONFLICT``, 500 ``INTERNAL``), after the server's ``Retry-After`` (or
    ``retry_after_seconds``), else after a backoff that doubles from
    ``backoff`` to ``max_backoff``; and when the connection failed, if the
    request cannot apply twice (a query, or an action with its request_id;
    a request that never left is always repeated). It is not repeated when
    the wait the server names exceeds ``max_wait`` (the result is returned
    at once: an agent may have better things to do than wait a minute), nor
    beyond ``attempts`` requests in all. ``attempts=1`` turns retries off.
    """

    attempts: int = 4
    max_wait: float = 10.0
    backoff: float = 0.2
    max_backoff: float = 5.0

    def delay(self, n: int) -> float:
        """The backoff before retry n (1, 2, ...) when the server named no
        wait."""
        return min(self.backoff * (2 ** (n - 1)), self.max_backoff)


def _retry_after(a: Answer, body: Mapping[str, Any]) -> Optional[float]:
    """The server's wait in seconds: the Retry-After header (delta seconds),
    else the body's retry_after_seconds; None when it named none."""
    h = a.headers.get("retry-after", "").strip()
    if h.isdigit():
        return float(h)
    v = body.get("retry_after_seconds")
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
        return float(v)
    return None


def _decode(a: Answer, what: str) -> Dict[str, Any]:
    """The JSON object of an answer, or TransportError when it is not
    kernelhost's (a proxy's HTML page, a redirect)."""
    if 300 <= a.status < 400:
        raise TransportError(f"{what}: the server answered a redirect ({a.status}); kernelhost never redirects, "
                             "so this is not the server you meant", sent=True, status=a.status)
    try:
        d = json.loads(a.body)
    except ValueError:
        raise TransportError(f"{what}: the answer ({a.status}) is not JSON: {a.body[:200]!r}", sent=True,
                             status=a.status) from None
    if not isinstance(d, dict):
        raise TransportError(f"{what}: the answer ({a.status}) is not a JSON object", sent=True, status=a.status)
    return d


def _content_fields(content: Union[bytes, bytearray, str, None]) -> Dict[str, Any]:
    if content is None:
        return {}
    if isinstance(content, str):
        return {"text": content}
    if isinstance(content, (bytes, bytearray, memoryview)):
        return {"content": base64.b64encode(bytes(content)).decode("ascii")}
    raise TypeError("content is bytes or str")


def _args_fields(args: Any) -> Dict[str, Any]:
    if args is None:
        return {}
    if isinstance(args, str):
        return {"args_text": args}
    if isinstance(args, (bytes, bytearray, memoryview)):
        return {"args": base64.b64encode(bytes(args)).decode("ascii")}
    return {"args_text": json.dumps(args, separators=(",", ":"))}


class Client:
    """A client of one kernelhost server, as one token.

    ``Client("http://127.0.0.1:8080", token)``. With a principal's token,
    every action is that principal's (the server binds the caller to the
    token); the admin token creates principals, mints and sets quotas, and
    reads what any token may read.

    Actions return a :class:`~kernelhost.Result`, ``ok`` or not; they raise
    only :class:`~kernelhost.TransportError` when no answer came (after
    retries). Queries return dataclasses and raise
    :class:`~kernelhost.KernelhostError` with the stable code.

    ``default_max_cost`` is put on every judged action (read, write, edit,
    delete, set_contract, invoke) that gives no ``max_cost`` of its own, so
    that no action pays more than it without saying so. ``retry`` is the
    :class:`RetryPolicy`; ``sleep`` waits (tests pass a fake one).

    A client may be shared between threads: each thread keeps its own
    connection.
    """

    def __init__(self, server: str, token: str, *, timeout: float = 60.0, retry: Optional[RetryPolicy] = None,
                 default_max_cost: Optional[int] = None, request_id_prefix: str = "py",
                 sleep: Callable[[float], None] = time.sleep,
                 on_retry: Optional[Callable[[int, float, str], None]] = None,
                 ssl_context: Optional[ssl.SSLContext] = None, ca_file: Optional[str] = None) -> None:
        if ca_file is not None:
            # An https server whose certificate a private CA signed (or a
            # self-signed one): trust exactly that file, as the CLI's
            # --ca-file does.
            if ssl_context is not None:
                raise KernelhostError("INVALID_ARGUMENT", "give ssl_context or ca_file, not both", category="input")
            ssl_context = ssl.create_default_context(cafile=ca_file)
        self._t = Transport(server, token, timeout, f"kernelhost-python/{__version__}", ssl_context)
        self.server = server.rstrip("/")
        self.retry = retry or RetryPolicy()
        if default_max_cost is not None:
            _check_amount("default_max_cost", default_max_cost)
        self.default_max_cost = default_max_cost
        if not _REQUEST_ID.fullmatch(request_id_prefix + "-" + "0" * 32):
            raise KernelhostError("INVALID_ARGUMENT", f"request_id_prefix {request_id_prefix!r}: letters, digits, "
                                                      "- _ . : @, at most 95 of them", category="input")
        self.request_id_prefix = request_id_prefix
        self._sleep = sleep
        self._on_retry = on_retry

    # -- plumbing ---------------------------------------------------------

    def close(self) -> None:
        """Closes the calling thread's connection."""
        self._t.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def new_request_id(self) -> str:
        """A fresh request_id (the client's prefix and 32 random hex
        digits)."""
        return f"{self.request_id_prefix}-{uuid.uuid4().hex}"

    def _exchange(self, method: str, path: str, *, query: Optional[Mapping[str, str]] = None,
                  body: Optional[bytes] = None, content_type: Optional[str] = None, repeatable: bool,
                  retry_codes: Optional[Sequence[str]] = None, request_id: str = "") -> "tuple[Answer, int]":
        """Sends a request, repeating it as the retry policy says, and
        returns the last answer with the number of requests sent.
        ``repeatable``: sending it twice cannot apply it twice (a query, an
        action with a request_id), so a lost answer may be retried.
        ``retry_codes`` limits the retried codes (None: every retriable
        one)."""
        headers = {"Content-Type": content_type} if content_type else None
        n = 0
        while True:
            n += 1
            try:
                a = self._t.request(method, path, query=query, body=body, headers=headers, repeatable=repeatable)
            except TransportError as e:
                e.request_id = request_id
                if n >= self.retry.attempts or (e.sent and not repeatable):
                    raise
                wait = self.retry.delay(n)
                self._notify(n, wait, e.message)
                self._sleep(wait)
                continue
            if a.status < 400 or n >= self.retry.attempts:
                return a, n
            try:
                d = json.loads(a.body)
            except ValueError:
                return a, n
            if not isinstance(d, dict) or d.get("retriable") is not True:
                return a, n
            code = d.get("error_code")
            if retry_codes is not None and code not in retry_codes:
                return a, n
            wait = _retry_after(a, d)
            if wait is None:
                wait = self.retry.delay(n)
            if wait > self.retry.max_wait:
                return a, n
            self._notify(n, wait, f"{code}: {d.get('message', '')}")
            self._sleep(wait)

    def _notify(self, n: int, wait: float, why: str) -> None:
        if self._on_retry is not None:
            self._on_retry(n, wait, why)

    def _query(self, method: str, path: str, *, query: Optional[Mapping[str, str]] = None,
               body: Any = None, repeatable: bool = True) -> Dict[str, Any]:
        """A request whose answer is a JSON object; an error answer raises."""
        raw = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        a, _ = self._exchange(method, path, query=query, body=raw,
                              content_type="application/json" if raw is not None else None, repeatable=repeatable)
        d = _decode(a, f"{method} {path}")
        if a.status >= 400:
            raise KernelhostError.from_body(a.status, d, retry_after=_retry_after(a, d))
        return d

    def _result(self, a: Answer, n: int, request_id: str, what: str) -> Result:
        d = _decode(a, what)
        if a.status >= 400 and not isinstance(d.get("error_code"), str):
            raise TransportError(f"{what}: a {a.status} answer without an error code", sent=True, status=a.status)
        return Result.from_json(d, status=a.status, request_id=request_id, attempts=n)

    # -- actions ----------------------------------------------------------

    def act(self, kind: str, *, request_id: Optional[str] = None, **fields: Any) -> Result:
        """Performs one action, ``POST /v1/actions``: ``kind`` and the JSON
        fields that kind uses (``target``, ``to``, ``amount``, ...; bytes
        ``content``/``args`` go as base64, ``text``/``args_text`` as text).
        ``max_cost`` is added for a judged kind when the client has a
        ``default_max_cost``. The action carries ``request_id`` (a fresh one
        when None), so that the client's retries never apply it twice.
        Fields that are None are left out."""
        if not isinstance(kind, str) or not kind:
            raise KernelhostError("INVALID_ARGUMENT", f"action kind {kind!r}: one of KINDS", category="input")
        body: Dict[str, Any] = {"kind": kind}
        for k, v in fields.items():
            if v is None:
                continue
            if k == "content" and isinstance(v, (bytes, bytearray, memoryview)):
                v = base64.b64encode(bytes(v)).decode("ascii")
            elif k == "args" and isinstance(v, (bytes, bytearray, memoryview)):
                v = base64.b64encode(bytes(v)).decode("ascii")
            body[k] = v
        if kind in JUDGED_KINDS and "max_cost" not in body and self.default_max_cost is not None:
            body["max_cost"] = self.default_max_cost
        rid = self._request_id(request_id)
        body["request_id"] = rid
        raw = json.dumps(body, separators=(",", ":")).encode()
        a, n = self._exchange("POST", "/v1/actions", body=raw, content_type="application/json", repeatable=True,
                              request_id=rid)
        return self._result(a, n, rid, "POST /v1/actions")

    def _request_id(self, request_id: Optional[str]) -> str:
        """``request_id``, checked, or a fresh one when it is None."""
        rid = self.new_request_id() if request_id is None else request_id
        if not isinstance(rid, str) or not _REQUEST_ID.fullmatch(rid):
            raise KernelhostError("INVALID_ARGUMENT", f"request_id {rid!r}: 1-128 letters, digits, - _ . : @",
                                  category="input")
        return rid

    def read(self, target: str, *, max_cost: Optional[int] = None, request_id: Optional[str] = None) -> Result:
        """Reads an artifact (judged and possibly charged by its contract):
        ``content`` holds its bytes, ``text`` the same when it is UTF-8. A
        replayed read (``replayed``) carries no content: read again, with a
        new request_id, to get it (and pay again, if it is priced)."""
        return self.act("read", target=target, max_cost=max_cost, request_id=request_id)

    def write(self, target: str, content: Union[bytes, str, None] = None, *, type: Optional[str] = None,
              contract: Optional[str] = None, metadata: Optional[Mapping[str, str]] = None,
              unset: Optional[Sequence[str]] = None, max_cost: Optional[int] = None,
              request_id: Optional[str] = None) -> Result:
        """Creates an artifact (``type`` needed) or replaces its content and
        merges ``metadata``. ``content`` is bytes or text. ``contract`` is
        the access contract (default: the world's default contract). For
        modules over a few MiB use :meth:`put_artifact`, which sends the
        bytes raw instead of as base64."""
        return self.act("write", target=target, type=type, contract=contract,
                        metadata=dict(metadata) if metadata is not None else None,
                        unset=list(unset) if unset else None, max_cost=max_cost, request_id=request_id,
                        **_content_fields(content))

    def edit(self, target: str, *, content: Union[bytes, str, None] = None,
             metadata: Optional[Mapping[str, str]] = None, unset: Optional[Sequence[str]] = None,
             type: Optional[str] = None, max_cost: Optional[int] = None, request_id: Optional[str] = None) -> Result:
        """Changes an artifact's metadata (merged; ``unset`` removes keys)
        and, when given, its content."""
        return self.act("edit", target=target, type=type, metadata=dict(metadata) if metadata is not None else None,
                        unset=list(unset) if unset else None, max_cost=max_cost, request_id=request_id,
                        **_content_fields(content))

    def delete(self, target: str, *, max_cost: Optional[int] = None, request_id: Optional[str] = None) -> Result:
        """Deletes an artifact."""
        return self.act("delete", target=target, max_cost=max_cost, request_id=request_id)

    def set_contract(self, target: str, contract: str, *, max_cost: Optional[int] = None,
                     request_id: Optional[str] = None) -> Result:
        """Gives an artifact another access contract."""
        return self.act("set_contract", target=target, contract=contract, max_cost=max_cost, request_id=request_id)

    def invoke(self, target: str, method: str, args: Any = None, *, max_cost: Optional[int] = None,
               max_llm_cost: Optional[int] = None, request_id: Optional[str] = None) -> Result:
        """Invokes an executable: ``args`` is text, bytes, or any JSON value
        (sent as its JSON text). The result's ``output`` (``output_text``
        when it is UTF-8) and ``logs`` are the executable's. ``max_cost``
        covers every price and transfer the invocation makes as the
        caller; ``max_llm_cost`` (micro-dollars) is the most its LLM calls
        may cost the caller's llm_budget (default: none may be made)."""
        return self.act("invoke", target=target, method=method, max_cost=max_cost, max_llm_cost=max_llm_cost,
                        request_id=request_id, **_args_fields(args))

    def transfer(self, to: str, amount: int, *, request_id: Optional[str] = None) -> Result:
        """Moves ``amount`` scrip from the caller to ``to``."""
        return self.act("transfer", to=to, amount=amount, request_id=request_id)

    def grant_consent(self, contract: str, per_call_cap: int, total_cap: int, *,
                      request_id: Optional[str] = None) -> Result:
        """Lets ``contract`` name the caller as payer, at most
        ``per_call_cap`` a call and ``total_cap`` in all."""
        return self.act("grant_consent", contract=contract, per_call_cap=per_call_cap, total_cap=total_cap,
                        request_id=request_id)

    def revoke_consent(self, contract: str, *, request_id: Optional[str] = None) -> Result:
        """Withdraws a consent."""
        return self.act("revoke_consent", contract=contract, request_id=request_id)

    def grant_llm_consent(self, to: str, per_call_cap: int, total_cap: int, amount: Optional[int] = None, *,
                          request_id: Optional[str] = None) -> Result:
        """Pays ``to``'s LLM calls through the gateway: caps in
        micro-dollars, ``amount`` in tokens."""
        return self.act("grant_llm_consent", to=to, per_call_cap=per_call_cap, total_cap=total_cap, amount=amount,
                        request_id=request_id)

    def revoke_llm_consent(self, to: str, *, request_id: Optional[str] = None) -> Result:
        """Stops paying ``to``'s LLM calls."""
        return self.act("revoke_llm_consent", to=to, request_id=request_id)

    def grant_standing(self, target: str, *, request_id: Optional[str] = None) -> Result:
        """Lets executable ``target`` act as the caller while its code and
        metadata stay as they are now."""
        return self.act("grant_standing", target=target, request_id=request_id)

    def revoke_standing(self, target: str, *, request_id: Optional[str] = None) -> Result:
        """Withdraws standing."""
        return self.act("revoke_standing", target=target, request_id=request_id)

    def set_spending_limit(self, amount: int, *, request_id: Optional[str] = None) -> Result:
        """The caller's default limit per action without ``max_cost``."""
        return self.act("set_spending_limit", amount=amount, request_id=request_id)

    def transfer_quota(self, to: str, resource: str, amount: int, *, request_id: Optional[str] = None) -> Result:
        """Gives ``amount`` of the caller's unused ``resource`` quota to
        ``to`` (a ``transfer_quota`` action; :meth:`quota_transfer` is the
        same through ``POST /v1/quotas/transfer``)."""
        return self.act("transfer_quota", to=to, resource=resource, amount=amount, request_id=request_id)

    def consume_quota(self, resource: str, amount: int, *, request_id: Optional[str] = None) -> Result:
        """Uses ``amount`` of the caller's ``resource`` (e.g. LLM tokens
        spent outside the gateway)."""
        return self.act("consume_quota", resource=resource, amount=amount, request_id=request_id)

    def mint_right(self, target: str, resource: str, amount: int, *, contract: Optional[str] = None,
                   request_id: Optional[str] = None) -> Result:
        """Wraps ``amount`` of the caller's unused ``resource`` quota into a
        new right ``target`` that the caller holds."""
        return self.act("mint_right", target=target, resource=resource, amount=amount, contract=contract,
                        request_id=request_id)

    def transfer_right(self, target: str, to: str, *, request_id: Optional[str] = None) -> Result:
        """Makes ``to`` the holder of right ``target``."""
        return self.act("transfer_right", target=target, to=to, request_id=request_id)

    def split_right(self, target: str, amounts: Sequence[int], *, ids: Optional[Sequence[str]] = None,
                    request_id: Optional[str] = None) -> Result:
        """Replaces a right by 2-64 parts summing exactly to it; the
        result's ``ids`` names them."""
        return self.act("split_right", target=target, amounts=list(amounts), ids=list(ids) if ids else None,
                        request_id=request_id)

    def merge_rights(self, target: str, ids: Sequence[str], *, request_id: Optional[str] = None) -> Result:
        """Adds the caller's rights ``ids`` into ``target`` and removes
        them."""
        return self.act("merge_rights", target=target, ids=list(ids), request_id=request_id)

    def redeem_right(self, target: str, *, request_id: Optional[str] = None) -> Result:
        """Moves a right's amount back into the caller's quota."""
        return self.act("redeem_right", target=target, request_id=request_id)

    def explain(self, kind: str, *, target: str, **fields: Any) -> Explanation:
        """Judges an artifact action without effect, ``POST /v1/explain``:
        the decision, the request the contract saw and the ``outcome`` the
        action would have now. Nothing is written or paid; the contract runs
        are charged to the caller's ``cpu_rate``."""
        body: Dict[str, Any] = {"kind": kind, "target": target}
        for k, v in fields.items():
            if v is None:
                continue
            if k == "content":
                body.update(_content_fields(v))
            elif k == "args":
                body.update(_args_fields(v))
            else:
                body[k] = v
        return Explanation.from_json(self._query("POST", "/v1/explain", body=body))

    # -- artifacts --------------------------------------------------------

    def get_artifact(self, id: str, *, raw: bool = False) -> Result:
        """Reads an artifact through ``GET /v1/artifacts/{id}`` (a read
        action: judged, possibly charged, recorded). With ``raw`` the server
        answers the bare bytes (``?format=raw``), put in ``content``.

        The route takes neither ``max_cost`` nor a request_id: the read runs
        under the caller's default spending limit, and a lost answer is not
        retried (it may have been paid). :meth:`read` has both."""
        path = "/v1/artifacts/" + _check_id("artifact id", id)
        a, n = self._exchange("GET", path, query={"format": "raw"} if raw else None, repeatable=False)
        if raw and a.status == 200:
            rev = a.headers.get("x-kernelhost-revision", "0")
            text: Optional[str]
            try:
                text = a.body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            return Result(ok=True, content=a.body, text=text, revision=int(rev) if rev.isdigit() else 0,
                          status=a.status, attempts=n)
        return self._result(a, n, "", "GET " + path)

    def put_artifact(self, id: str, data: Union[bytes, str], *, type: Optional[str] = None,
                     contract: Optional[str] = None, metadata: Optional[Mapping[str, str]] = None,
                     content_type: Optional[str] = None, max_cost: Optional[int] = None,
                     request_id: Optional[str] = None) -> Result:
        """Writes an artifact whose content is sent raw, ``PUT
        /v1/artifacts/{id}``: for modules (a 3.4 MB Go module is past the
        JSON limit as base64). ``content_type`` defaults to
        ``application/wasm`` for types ``contract`` and ``executable``,
        ``text/plain`` for str data, else ``application/octet-stream``. The
        write carries a request_id (fresh when None) and ``max_cost`` (or
        the client's default), as an action does."""
        path = "/v1/artifacts/" + _check_id("artifact id", id)
        body = data.encode() if isinstance(data, str) else bytes(data)
        if content_type is None:
            if type in ("contract", "executable"):
                content_type = "application/wasm"
            elif isinstance(data, str):
                content_type = "text/plain"
            else:
                content_type = "application/octet-stream"
        rid = self._request_id(request_id)
        q: Dict[str, str] = {"request_id": rid}
        if type is not None:
            q["type"] = type
        if contract is not None:
            q["contract"] = contract
        if metadata is not None:
            q["metadata"] = json.dumps(dict(metadata), separators=(",", ":"))
        mc = max_cost if max_cost is not None else self.default_max_cost
        if mc is not None:
            q["max_cost"] = str(mc)
        a, n = self._exchange("PUT", path, query=q, body=body, content_type=content_type, repeatable=True,
                              request_id=rid)
        return self._result(a, n, rid, "PUT " + path)

    def list_artifacts(self, prefix: str = "", *, cursor: Optional[str] = None,
                       limit: Optional[int] = None) -> ArtifactsPage:
        """One page of the artifacts the token may see under ``prefix``,
        ``GET /v1/artifacts`` (ids and types; a principal's token pays
        each read check in ``cpu_rate``)."""
        q = _page(cursor, limit)
        if prefix:
            q["prefix"] = prefix
        return ArtifactsPage.from_json(self._query("GET", "/v1/artifacts", query=q))

    def iter_artifacts(self, prefix: str = "", *, limit: Optional[int] = None) -> Iterator[Any]:
        """Every artifact the token may see under ``prefix``, page after
        page. A page cut short by the caller's ``cpu_rate`` raises its
        ``QUOTA_EXCEEDED``."""
        cursor = None
        while True:
            p = self.list_artifacts(prefix, cursor=cursor, limit=limit)
            yield from p.artifacts
            if p.quota_exceeded is not None:
                raise KernelhostError.from_result(p.quota_exceeded)
            if not p.next_cursor:
                return
            cursor = p.next_cursor

    # -- principals, scrip, totals ----------------------------------------

    def principals(self, *, cursor: Optional[str] = None, limit: Optional[int] = None) -> PrincipalsPage:
        """One page of the principals, ``GET /v1/principals``."""
        return PrincipalsPage.from_json(self._query("GET", "/v1/principals", query=_page(cursor, limit)))

    def iter_principals(self, *, limit: Optional[int] = None) -> Iterator[Principal]:
        """Every principal, following the cursors."""
        return _pages(lambda c: self.principals(cursor=c, limit=limit), "principals")

    def principal(self, id: str) -> PrincipalView:
        """A principal's balance and quotas, ``GET /v1/principals/{id}``."""
        return PrincipalView.from_json(self._query("GET", "/v1/principals/" + _segment("principal id", id)))

    def create_principal(self, id: str, balance: int = 0) -> CreatedPrincipal:
        """Creates a principal with ``balance`` scrip (admin token), ``POST
        /v1/principals``; its token is in the answer, this once. Not
        repeated after a lost answer: the token would be lost with it (a
        repeat finds ``ALREADY_EXISTS``)."""
        return CreatedPrincipal.from_json(self._query("POST", "/v1/principals", body={"id": id, "balance": balance},
                                                      repeatable=False))

    def create_principals(self, principals: Sequence[Union[str, "tuple[str, int]"]]) -> List[CreatedPrincipal]:
        """Creates up to 512 principals, each an id or an (id, balance)
        pair, with their tokens in one transaction on the server (admin
        token), ``POST /v1/principals`` with a list: all or none (an id
        that exists, or listed twice, refuses the list). The tokens are in
        the answer, in the order given, this once; not repeated after a
        lost answer."""
        body = [{"id": p, "balance": 0} if isinstance(p, str) else {"id": p[0], "balance": p[1]} for p in principals]
        d = self._query("POST", "/v1/principals", body=body, repeatable=False)
        got = d.get("principals")
        return [CreatedPrincipal.from_json(x) for x in got] if isinstance(got, list) else []

    def mint(self, id: str, amount: int) -> Principal:
        """Mints ``amount`` scrip into ``id``'s balance (admin token), ``POST
        /v1/mint``; not repeated after a lost answer (minting has no
        request_id)."""
        d = self._query("POST", "/v1/mint", body={"id": id, "amount": amount}, repeatable=False)
        return Principal.from_json(d.get("principal") if isinstance(d.get("principal"), dict) else {})

    def totals(self) -> Totals:
        """The world's totals in one snapshot (admin token), ``GET
        /v1/totals``."""
        return Totals.from_json(self._query("GET", "/v1/totals"))

    def snapshot(self, out: Optional[BinaryIO] = None) -> Union[bytes, int]:
        """The world as one snapshot file (admin token), ``GET
        /v1/snapshot``: what ``kernelhost snapshot`` saves and ``kernelhost
        init --from`` loads. Returns the bytes, or with ``out`` (a binary
        file) writes them there as they come and returns how many. The
        file is checked as it streams (its magic, its end marker and the
        sha256 of everything before the hash): a body cut short or altered
        raises TransportError, since the status went out before the
        stream. Not retried."""
        conn = self._t.new_connection()
        buf = bytearray() if out is None else None
        h = hashlib.sha256()
        tail = b""  # the last 44 bytes seen: end marker, count and hash
        head = b""  # the first bytes: the magic
        n = 0
        try:
            try:
                conn.request("GET", self._t.path("/v1/snapshot"),
                             headers=self._t.headers({"Accept": SNAPSHOT_CONTENT_TYPE}))
                resp = conn.getresponse()
                if resp.status != 200:
                    a = Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read(1 << 20))
                    d = _decode(a, "GET /v1/snapshot")
                    raise KernelhostError.from_body(a.status, d, retry_after=_retry_after(a, d))
                while True:
                    chunk = resp.read(1 << 16)
                    if not chunk:
                        break
                    n += len(chunk)
                    if len(head) < len(SNAPSHOT_MAGIC):
                        head += chunk[:len(SNAPSHOT_MAGIC) - len(head)]
                    both = tail + chunk
                    h.update(both[:-44])
                    tail = both[-44:]
                    if buf is not None:
                        buf += chunk
                    elif out is not None:
                        out.write(chunk)
            except (OSError, http.client.HTTPException) as e:
                raise TransportError(f"GET /v1/snapshot broke after {n} bytes: {type(e).__name__}: {e}",
                                     sent=True) from None
        finally:
            conn.close()
        if n < len(SNAPSHOT_MAGIC) + 44 or len(tail) < 44:
            raise TransportError(f"GET /v1/snapshot: {n} bytes are no snapshot (cut short?)", sent=True)
        h.update(tail[:12])
        if head != SNAPSHOT_MAGIC:
            raise TransportError("GET /v1/snapshot: the body is not a snapshot (no KHSNAP1 magic)", sent=True)
        if tail[:4] != b"\xff\xff\xff\xff" or h.digest() != tail[12:]:
            raise TransportError(f"GET /v1/snapshot: the snapshot of {n} bytes is cut short or altered "
                                 "(no end marker, or its sha256 differs)", sent=True)
        return bytes(buf) if buf is not None else n

    def whoami(self) -> Optional[str]:
        """The principal this token stands for, None for the admin token
        (``GET /v1/quotas`` names the caller and refuses the admin
        token)."""
        try:
            return self.quotas().principal
        except KernelhostError as e:
            if e.status == 403 and e.message.startswith("the admin token acts as no principal"):
                return None
            raise

    # -- quotas -----------------------------------------------------------

    def quotas(self) -> Quotas:
        """The caller's quotas, ``GET /v1/quotas``."""
        return Quotas.from_json(self._query("GET", "/v1/quotas"))

    def principal_quotas(self, id: str) -> Quotas:
        """Another principal's quotas, ``GET /v1/principals/{id}/quotas``."""
        return Quotas.from_json(self._query("GET", f"/v1/principals/{_segment('principal id', id)}/quotas"))

    def quota_transfer(self, to: str, resource: str, amount: int, *, request_id: Optional[str] = None) -> Result:
        """``POST /v1/quotas/transfer``: :meth:`transfer_quota` through its
        own route. Like :meth:`act` it carries ``request_id`` (a fresh one
        when not given), so a lost answer is retried safely: the retry is
        the first result and the quota moves once."""
        rid = self._request_id(request_id)
        raw = json.dumps({"to": to, "resource": resource, "amount": amount, "request_id": rid},
                         separators=(",", ":")).encode()
        a, n = self._exchange("POST", "/v1/quotas/transfer", body=raw, content_type="application/json",
                              repeatable=True, request_id=rid)
        return self._result(a, n, rid, "POST /v1/quotas/transfer")

    def set_quota(self, id: str, resource: str, quota: int) -> QuotaStatus:
        """Sets ``id``'s ``resource`` quota (admin token), ``PUT
        /v1/principals/{id}/quotas/{resource}``; setting is idempotent, so
        a lost answer is retried."""
        path = f"/v1/principals/{_segment('principal id', id)}/quotas/{urllib.parse.quote(resource, safe='')}"
        d = self._query("PUT", path, body={"quota": quota})
        return QuotaStatus.from_json(d.get("quota") if isinstance(d.get("quota"), dict) else {})

    # -- rights, consents, standing ---------------------------------------

    def rights(self, *, holder: Optional[str] = None, cursor: Optional[str] = None,
               limit: Optional[int] = None) -> RightsPage:
        """One page of rights, ``GET /v1/rights``: the caller's, or with the
        admin token everyone's (or ``holder``'s)."""
        q = _page(cursor, limit)
        if holder is not None:
            q["holder"] = holder
        return RightsPage.from_json(self._query("GET", "/v1/rights", query=q))

    def iter_rights(self, *, holder: Optional[str] = None, limit: Optional[int] = None) -> Iterator[Any]:
        """Every right :meth:`rights` lists, following the cursors."""
        return _pages(lambda c: self.rights(holder=holder, cursor=c, limit=limit), "rights")

    def principal_rights(self, id: str, *, cursor: Optional[str] = None, limit: Optional[int] = None) -> RightsPage:
        """One page of ``id``'s rights (its token, or admin), ``GET
        /v1/principals/{id}/rights``."""
        return RightsPage.from_json(self._query("GET", f"/v1/principals/{_segment('principal id', id)}/rights",
                                                query=_page(cursor, limit)))

    def consents(self, id: str, *, cursor: Optional[str] = None, limit: Optional[int] = None) -> ConsentsPage:
        """One page of ``id``'s consents (its token, or admin), ``GET
        /v1/principals/{id}/consents``."""
        return ConsentsPage.from_json(self._query("GET", f"/v1/principals/{_segment('principal id', id)}/consents",
                                                  query=_page(cursor, limit)))

    def consent(self, id: str, contract: str) -> Grant:
        """``id``'s consent to ``contract``, ``GET
        /v1/principals/{id}/consents/{contract}`` (``NOT_FOUND`` when it
        has none)."""
        path = f"/v1/principals/{_segment('principal id', id)}/consents/{_check_id('contract id', contract)}"
        d = self._query("GET", path)
        return Grant.from_json(d.get("consent") if isinstance(d.get("consent"), dict) else {})

    def standings(self, id: str, *, cursor: Optional[str] = None, limit: Optional[int] = None) -> StandingsPage:
        """One page of the executables ``id`` granted standing, ``GET
        /v1/principals/{id}/standings``."""
        return StandingsPage.from_json(self._query("GET",
                                                   f"/v1/principals/{_segment('principal id', id)}/standings",
                                                   query=_page(cursor, limit)))

    # -- tokens ------------------------------------------------------------

    def create_token(self, id: str, name: str, scopes: Sequence[str], *, caps: Optional[Mapping[str, int]] = None,
                     window_seconds: Optional[int] = None, expires_in_seconds: Optional[int] = None,
                     expires_at: Optional[str] = None) -> Dict[str, Any]:
        """Creates the named token ``name`` of ``id`` (``POST
        /v1/principals/{id}/tokens``; the admin token or an unrestricted
        token of ``id``): ``scopes`` (action kinds, ``query``,
        ``read-only``, ``*``), optional ``caps`` per window (``scrip`` and
        quota resources), ``window_seconds``, an expiry. The answer holds
        ``token`` (its fields) and ``secret``, shown this once; not repeated
        after a lost answer."""
        body: Dict[str, Any] = {"name": name, "scopes": list(scopes)}
        for k, v in (("caps", caps), ("window_seconds", window_seconds), ("expires_in_seconds", expires_in_seconds),
                     ("expires_at", expires_at)):
            if v is not None:
                body[k] = dict(v) if k == "caps" else v
        return self._query("POST", f"/v1/principals/{_segment('principal id', id)}/tokens", body=body,
                           repeatable=False)

    def tokens(self, id: str) -> List[Dict[str, Any]]:
        """Every token of ``id`` by name, with ``last_used`` and, for a
        capped one, ``spent``; never a secret (``GET
        /v1/principals/{id}/tokens``)."""
        got = self._query("GET", f"/v1/principals/{_segment('principal id', id)}/tokens").get("tokens")
        return list(got) if isinstance(got, list) else []

    def revoke_token(self, id: str, name: str) -> Dict[str, Any]:
        """Revokes token ``name`` of ``id`` at once on every node (``DELETE
        /v1/principals/{id}/tokens/{name}``)."""
        return self._query("DELETE", f"/v1/principals/{_segment('principal id', id)}/tokens/"
                                     f"{_segment('token name', name)}")

    def llm_consent(self, sponsor: str, principal: str) -> LLMConsent:
        """``sponsor``'s consent to pay ``principal``'s LLM calls, ``GET
        /v1/principals/{id}/llm_consents/{principal}``."""
        path = (f"/v1/principals/{_segment('principal id', sponsor)}/llm_consents/"
                f"{_segment('principal id', principal)}")
        d = self._query("GET", path)
        return LLMConsent.from_json(d.get("consent") if isinstance(d.get("consent"), dict) else {})

    # -- events -----------------------------------------------------------

    def events(self, after: int = 0, *, limit: Optional[int] = None, kind: Optional[str] = None,
               principal: Optional[str] = None, target: Optional[str] = None) -> EventsPage:
        """One page of the audit trail after ``after``, as the token sees
        it, ``GET /v1/events``; continue with ``after=page.next``."""
        return EventsPage.from_json(self._query("GET", "/v1/events",
                                                query=_event_query(after, limit, kind, principal, target)))

    def iter_events(self, after: int = 0, *, limit: Optional[int] = None, kind: Optional[str] = None,
                    principal: Optional[str] = None, target: Optional[str] = None) -> Iterator[Event]:
        """The events after ``after`` that exist now, page after page, until
        caught up (:meth:`follow` waits for more)."""
        while True:
            p = self.events(after, limit=limit, kind=kind, principal=principal, target=target)
            yield from p.events
            if not p.more or p.next <= after:
                return
            after = p.next

    def event(self, seq: int) -> Event:
        """Event ``seq`` as the token sees it, ``GET /v1/events/{seq}``
        (``NOT_FOUND`` when there is none or the token may not see it)."""
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise KernelhostError("INVALID_ARGUMENT", f"event {seq!r}: a positive sequence number", category="input")
        d = self._query("GET", f"/v1/events/{seq}")
        return Event.from_json(d.get("event") if isinstance(d.get("event"), dict) else {})

    def follow(self, after: int = 0, *, kind: Optional[str] = None, principal: Optional[str] = None,
               target: Optional[str] = None, limit: Optional[int] = None, reconnect: bool = True,
               max_backoff: float = 10.0, read_timeout: float = 45.0) -> "EventStream":
        """Follows the audit trail live, ``GET /v1/events?follow=1``
        (Server-Sent Events): an iterator of :class:`~kernelhost.Event`
        from ``after`` on, as the token sees them, waiting for new ones.
        When the stream ends or breaks (the server's 30-minute bound, a
        restart, a network fault, ``read_timeout`` seconds without even a
        keep-alive) it resumes after the last event seen (``Last-Event-ID``)
        with no gap and no duplicate, waiting the server's ``retry`` and
        backing off to ``max_backoff`` while it fails; ``reconnect=False``
        ends the iteration instead. A refusal (a bad token or filter)
        raises. ``stream.last_id`` is the position to resume from later;
        ``stream.close()`` (or leaving a ``with`` block) ends it."""
        return EventStream(self, _event_query(after, limit, kind, principal, target), reconnect, max_backoff,
                           read_timeout)

    # -- LLM gateway ------------------------------------------------------

    def llm_chat(self, model: str, messages: Sequence[Mapping[str, Any]], *, payer: Optional[str] = None,
                 **fields: Any) -> ChatCompletion:
        """One chat completion through the server's metered gateway, ``POST
        /v1/llm/chat``, as the token's principal: the provider's request
        and answer (``fields`` are the request's other fields:
        ``max_tokens``, ``temperature``, ...), plus what was charged.
        ``payer`` bills a sponsor that consented (``grant_llm_consent``)
        instead of the caller. Only ``QUOTA_EXCEEDED`` is retried (nothing
        was sent or charged); any other failure raises, since a failed call
        may have been charged its reservation."""
        body = dict(fields)
        body.update({"model": model, "messages": list(messages)})
        body.pop("stream", None)
        raw = json.dumps(body, separators=(",", ":")).encode()
        a, _ = self._exchange("POST", "/v1/llm/chat", query=_payer(payer), body=raw,
                              content_type="application/json", repeatable=False, retry_codes=("QUOTA_EXCEEDED",))
        d = _decode(a, "POST /v1/llm/chat")
        if a.status >= 400:
            raise KernelhostError.from_body(a.status, d, retry_after=_retry_after(a, d))
        h = a.headers
        return ChatCompletion(response=d, input_tokens=_hint(h, "x-kernelhost-llm-input-tokens"),
                              output_tokens=_hint(h, "x-kernelhost-llm-output-tokens"),
                              cost_microdollars=_hint(h, "x-kernelhost-llm-cost-microdollars"),
                              event=_hint(h, "x-kernelhost-event"))

    def llm_chat_stream(self, model: str, messages: Sequence[Mapping[str, Any]], *, payer: Optional[str] = None,
                        **fields: Any) -> Iterator[Dict[str, Any]]:
        """A streaming chat completion: yields each chunk (a JSON object) as
        the provider sends it, until ``[DONE]`` (``payer`` as in
        :meth:`llm_chat`). A stream that breaks off raises the gateway's
        error. Not retried once it started."""
        body = dict(fields)
        body.update({"model": model, "messages": list(messages), "stream": True})
        raw = json.dumps(body, separators=(",", ":")).encode()
        n = 0
        while True:
            n += 1
            conn = self._t.new_connection()
            try:
                try:
                    conn.request("POST", self._t.path("/v1/llm/chat", _payer(payer)), body=raw,
                                 headers=self._t.headers({"Content-Type": "application/json",
                                                          "Accept": "text/event-stream"}))
                    resp = conn.getresponse()
                except OSError as e:
                    raise TransportError(f"POST /v1/llm/chat: {type(e).__name__}: {e}", sent=True) from None
                if resp.status != 200:
                    a = Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read(1 << 20))
                    d = _decode(a, "POST /v1/llm/chat")
                    wait = _retry_after(a, d)
                    if (d.get("error_code") == "QUOTA_EXCEEDED" and d.get("retriable") is True and wait is not None
                            and wait <= self.retry.max_wait and n < self.retry.attempts):
                        self._notify(n, wait, "QUOTA_EXCEEDED")
                        self._sleep(wait)
                        continue
                    raise KernelhostError.from_body(a.status, d, retry_after=wait)
                for m in sse.parse(iter(lambda: resp.readline(sse.MAX_LINE + 1), b"")):
                    if m.data == "[DONE]":
                        # Read the answer to its end: the gateway settles
                        # the call before it ends the answer, so that
                        # what was charged is in the quotas on return.
                        while resp.read(1 << 16):
                            pass
                        return
                    if not m.data:
                        continue
                    try:
                        chunk = json.loads(m.data)
                    except ValueError:
                        raise TransportError(f"POST /v1/llm/chat: a chunk is not JSON: {m.data[:200]!r}",
                                             sent=True) from None
                    if isinstance(chunk, dict) and isinstance(chunk.get("error"), dict):
                        raise KernelhostError.from_body(200, chunk["error"])
                    yield chunk
                raise TransportError("POST /v1/llm/chat: the stream ended before [DONE]", sent=True)
            finally:
                conn.close()

    # -- the server itself ------------------------------------------------

    def healthz(self) -> bool:
        """Whether the kernel answers (``GET /healthz``: 200, else 503)."""
        try:
            a = self._t.request("GET", "/healthz")
        except TransportError:
            return False
        return a.status == 200

    def metrics(self) -> str:
        """The Prometheus text of ``GET /metrics``."""
        a, _ = self._exchange("GET", "/metrics", repeatable=True)
        if a.status != 200:
            raise KernelhostError.from_body(a.status, _decode(a, "GET /metrics"))
        return a.body.decode("utf-8", errors="replace")

    def openapi(self) -> Dict[str, Any]:
        """The OpenAPI 3 document of the server's API, ``GET
        /v1/openapi.json``."""
        return self._query("GET", "/v1/openapi.json")


def _payer(payer: Optional[str]) -> Optional[Dict[str, str]]:
    return None if payer is None else {"payer": _check_id("payer", payer)}


def _hint(h: Mapping[str, str], k: str) -> int:
    v = h.get(k, "")
    return int(v) if v.isdigit() else 0


def _check_amount(what: str, v: Any) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise KernelhostError("INVALID_ARGUMENT", f"{what} {v!r}: a non-negative integer", category="input")


def _page(cursor: Optional[str], limit: Optional[int]) -> Dict[str, str]:
    q: Dict[str, str] = {}
    if cursor is not None:
        q["cursor"] = cursor
    if limit is not None:
        q["limit"] = str(limit)
    return q


def _pages(get: Callable[[Optional[str]], Any], field_name: str) -> Iterator[Any]:
    cursor = None
    while True:
        p = get(cursor)
        yield from getattr(p, field_name)
        if not p.next_cursor:
            return
        cursor = p.next_cursor


def _event_query(after: int, limit: Optional[int], kind: Optional[str], principal: Optional[str],
                 target: Optional[str]) -> Dict[str, str]:
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise KernelhostError("INVALID_ARGUMENT", f"after {after!r}: a sequence number (0 or more)", category="input")
    q = {"after": str(after)}
    if limit is not None:
        q["limit"] = str(limit)
    for k, v in (("kind", kind), ("principal", principal), ("target", target)):
        if v is not None:
            q[k] = v
    return q


class EventStream:
    """The live follow of :meth:`Client.follow`: iterate it for events;
    ``last_id`` is the last event number seen (or skipped past), from
    which a later follow resumes."""

    def __init__(self, client: Client, query: Dict[str, str], reconnect: bool, max_backoff: float,
                 read_timeout: float) -> None:
        self._c = client
        self._q = query
        self.last_id = int(query["after"])
        self._reconnect = reconnect
        self._max_backoff = max_backoff
        self._read_timeout = read_timeout
        self._retry = 0.2  # the server's retry, until it names one
        self._wait = self._retry
        self._conn: Any = None
        self._resp: Any = None
        self._msgs: Optional[Iterator[sse.Message]] = None
        self._closed = False
        self.reconnects = 0  # times it resumed, or tried to, after a stream ended or broke

    def __iter__(self) -> "EventStream":
        return self

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Ends the follow; safe from another thread (a blocked read wakes
        up) and more than once."""
        self._closed = True
        self._drop()

    def _drop(self) -> None:
        conn, self._conn, self._resp, self._msgs = self._conn, None, None, None
        if conn is not None:
            sock = getattr(conn, "sock", None)
            if sock is not None:
                try:
                    import socket

                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            conn.close()

    def _open(self) -> None:
        q = dict(self._q)
        q["after"] = str(self.last_id)
        q["follow"] = "1"
        conn = self._c._t.new_connection(timeout=self._read_timeout)
        self._conn = conn
        try:
            conn.request("GET", self._c._t.path("/v1/events", q),
                         headers=self._c._t.headers({"Accept": "text/event-stream",
                                                     "Last-Event-ID": str(self.last_id)}))
            resp = conn.getresponse()
        except OSError as e:
            self._drop()
            raise TransportError(f"GET /v1/events?follow=1: {type(e).__name__}: {e}", sent=False) from None
        except Exception:
            self._drop()
            raise
        if resp.status != 200 or not resp.getheader("Content-Type", "").startswith("text/event-stream"):
            a = Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read(1 << 20))
            self._drop()
            d = _decode(a, "GET /v1/events?follow=1")
            raise KernelhostError.from_body(a.status, d, retry_after=_retry_after(a, d))
        self._resp = resp
        self._msgs = sse.parse(iter(lambda: resp.readline(sse.MAX_LINE + 1), b""))

    def _pause(self, err: Optional[BaseException]) -> None:
        """Waits before the next stream: the server's retry after a stream
        that ended, doubling up to max_backoff while attempts fail."""
        self._drop()
        if not self._reconnect:
            self._closed = True
            if err is not None:
                raise err
            raise StopIteration
        self._c._notify(self.reconnects + 1, self._wait, str(err) if err else "the stream ended")
        self._c._sleep(self._wait)
        if err is not None:
            self._wait = min(self._wait * 2, self._max_backoff)
        self.reconnects += 1

    def __next__(self) -> Event:
        while True:
            if self._closed:
                raise StopIteration
            if self._msgs is None:
                try:
                    self._open()
                except KernelhostError as e:
                    if self._closed:
                        raise StopIteration from None
                    refused = not isinstance(e, TransportError) and e.code != "UNAVAILABLE"
                    if refused:
                        self._closed = True
                        raise
                    self._pause(e)
                    continue
            try:
                m = next(self._msgs)  # type: ignore[arg-type]
            except StopIteration:
                if self._closed:
                    raise
                self._pause(None)
                continue
            except Exception as e:  # a broken stream (reset, timeout, a line too long): resume
                if self._closed:
                    raise StopIteration from None
                self._pause(TransportError(f"the follow broke: {type(e).__name__}: {e}", sent=True))
                continue
            if m.retry is not None:
                self._retry = m.retry / 1000.0
                self._wait = self._retry
            if m.event == "error":
                try:
                    d = json.loads(m.data)
                except ValueError:
                    d = {}
                if not isinstance(d, dict) or not d.get("error_code"):
                    d = {"error_code": "INTERNAL", "message": "the follow ended with an error: " + m.data}
                e = KernelhostError.from_body(200, d)
                if e.code == "UNAVAILABLE" or e.retriable:
                    self._pause(e)
                    continue
                self._closed = True
                self._drop()
                raise e
            if m.data:
                try:
                    d = json.loads(m.data)
                except ValueError:
                    self._pause(TransportError(f"an event of the follow is not JSON: {m.data[:200]!r}", sent=True))
                    continue
                ev = Event.from_json(d if isinstance(d, dict) else {})
                if ev.seq <= self.last_id:
                    continue  # already seen (a server resending): never twice
                self.last_id = ev.seq
                self._wait = self._retry  # it works: start the backoff over
                return ev
            if m.id is not None and m.id.isdigit() and int(m.id) > self.last_id:
                # Events the token may not see were skipped: move past them.
                self.last_id = int(m.id)
