"""The shapes of kernelhost's HTTP API as dataclasses.

Each class mirrors one JSON object of docs/http.md (the Go types behind it
are named in each docstring). ``from_json`` reads the server's answer; fields
the server adds later are kept in ``raw`` rather than refused, so that an
older client keeps working against a newer server.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

__all__ = [
    "ArtifactInfo",
    "ArtifactsPage",
    "Charge",
    "ChatCompletion",
    "ConsentsPage",
    "CreatedPrincipal",
    "Decision",
    "Event",
    "EventsPage",
    "Explanation",
    "Grant",
    "ListedArtifact",
    "LLMConsent",
    "Principal",
    "PrincipalsPage",
    "PrincipalView",
    "Quotas",
    "QuotaStatus",
    "Result",
    "Right",
    "RightsPage",
    "Standing",
    "StandingsPage",
    "Totals",
]


def _b64(v: Any) -> Optional[bytes]:
    """Decodes a base64 field; None stays None. A malformed value is kept as
    None rather than raising: the text twin (``text``, ``output_text``)
    still carries the content when it is UTF-8."""
    if v is None:
        return None
    try:
        return base64.b64decode(v, validate=True)
    except (binascii.Error, TypeError, ValueError):
        return None


def _int(d: Mapping[str, Any], k: str) -> int:
    v = d.get(k)
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _str(d: Mapping[str, Any], k: str) -> str:
    v = d.get(k)
    return v if isinstance(v, str) else ""


def _opt_str(d: Mapping[str, Any], k: str) -> Optional[str]:
    v = d.get(k)
    return v if isinstance(v, str) else None


def _list(d: Mapping[str, Any], k: str) -> List[Any]:
    v = d.get(k)
    return v if isinstance(v, list) else []


def _dict(d: Mapping[str, Any], k: str) -> Dict[str, Any]:
    v = d.get(k)
    return v if isinstance(v, dict) else {}


@dataclass
class Decision:
    """A contract's answer (api.Decision): ``payer`` empty means the caller
    pays, ``payee`` empty means the cost is burned."""

    allowed: bool
    cost: int = 0
    payer: str = ""
    payee: str = ""
    reason: str = ""

    @classmethod
    def from_json(cls, d: Optional[Mapping[str, Any]]) -> Optional["Decision"]:
        if not isinstance(d, dict):
            return None
        return cls(allowed=bool(d.get("allowed")), cost=_int(d, "cost"), payer=_str(d, "payer"),
                   payee=_str(d, "payee"), reason=_str(d, "reason"))


@dataclass
class Charge:
    """One scrip movement an action applied (kernel.Charge); ``payee``
    empty: burned."""

    payer: str
    payee: str
    amount: int
    reason: str

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Charge":
        return cls(payer=_str(d, "payer"), payee=_str(d, "payee"), amount=_int(d, "amount"), reason=_str(d, "reason"))


@dataclass
class ArtifactInfo:
    """An artifact's description (kernel.ArtifactInfo), never its content."""

    id: str
    type: str
    created_by: str
    access_contract: str
    metadata: Dict[str, str]
    size: int
    revision: int
    sha256: str
    created_at: str
    updated_at: str

    @classmethod
    def from_json(cls, d: Optional[Mapping[str, Any]]) -> Optional["ArtifactInfo"]:
        if not isinstance(d, dict):
            return None
        return cls(id=_str(d, "id"), type=_str(d, "type"), created_by=_str(d, "created_by"),
                   access_contract=_str(d, "access_contract"), metadata=dict(_dict(d, "metadata")),
                   size=_int(d, "size"), revision=_int(d, "revision"), sha256=_str(d, "sha256"),
                   created_at=_str(d, "created_at"), updated_at=_str(d, "updated_at"))


@dataclass
class Result:
    """The outcome of one action (api.Result), allowed or not.

    ``ok`` false carries ``error_code`` (a stable code: README "Error
    codes"), ``error_category`` and ``retriable``: whether the same action
    may succeed later unchanged (a ``QUOTA_EXCEEDED`` that waiting cures has
    ``retry_after_seconds``, ``resource`` and ``available``). ``replayed``
    is true when the server returned the first result of this
    ``request_id`` instead of running the action again.

    The client adds what it knows: ``status`` (the HTTP status),
    ``request_id`` (the id it sent) and ``attempts`` (how many requests it
    took, retries included).
    """

    ok: bool
    retriable: bool = False
    error_code: str = ""
    error_category: str = ""
    message: str = ""
    decision: Optional[Decision] = None
    charges: List[Charge] = field(default_factory=list)
    revision: int = 0
    event: int = 0
    artifact: Optional[ArtifactInfo] = None
    content: Optional[bytes] = None
    text: Optional[str] = None
    output: Optional[bytes] = None
    output_text: Optional[str] = None
    logs: List[str] = field(default_factory=list)
    ids: List[str] = field(default_factory=list)
    resource: str = ""
    available: int = 0
    retry_after_seconds: float = 0.0
    replayed: bool = False
    status: int = 0
    request_id: str = ""
    attempts: int = 0
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any], status: int = 0, request_id: str = "", attempts: int = 0) -> "Result":
        ra = d.get("retry_after_seconds")
        return cls(
            ok=d.get("ok") is True,
            retriable=d.get("retriable") is True,
            error_code=_str(d, "error_code"),
            error_category=_str(d, "error_category"),
            message=_str(d, "message"),
            decision=Decision.from_json(d.get("decision")),
            charges=[Charge.from_json(c) for c in _list(d, "charges") if isinstance(c, dict)],
            revision=_int(d, "revision"),
            event=_int(d, "event"),
            artifact=ArtifactInfo.from_json(d.get("artifact")),
            content=_b64(d.get("content")),
            text=_opt_str(d, "text"),
            output=_b64(d.get("output")),
            output_text=_opt_str(d, "output_text"),
            logs=[s for s in _list(d, "logs") if isinstance(s, str)],
            ids=[s for s in _list(d, "ids") if isinstance(s, str)],
            resource=_str(d, "resource"),
            available=_int(d, "available"),
            retry_after_seconds=float(ra) if isinstance(ra, (int, float)) and not isinstance(ra, bool) else 0.0,
            replayed=d.get("replayed") is True,
            status=status,
            request_id=request_id,
            attempts=attempts,
            raw=dict(d),
        )

    @property
    def code(self) -> str:
        """The stable code: ``"OK"`` on success, else ``error_code``."""
        return "OK" if self.ok else self.error_code

    def check(self) -> "Result":
        """Returns the result when it is ``ok``, else raises it as a
        :class:`kernelhost.KernelhostError`: for callers that would rather
        branch with ``try`` than on ``ok``."""
        if not self.ok:
            from .errors import KernelhostError

            raise KernelhostError.from_result(self)
        return self


@dataclass
class Principal:
    """A principal and its scrip balance (kernel.Principal)."""

    id: str
    balance: int
    created_at: str = ""

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Principal":
        return cls(id=_str(d, "id"), balance=_int(d, "balance"), created_at=_str(d, "created_at"))


@dataclass
class QuotaStatus:
    """One resource's quota of a principal (kernel.QuotaStatus):
    ``retry_after_ns`` is when capacity in use frees up (renewable
    resources)."""

    resource: str
    quota: int
    used: int
    available: int
    retry_after_ns: int = 0

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "QuotaStatus":
        return cls(resource=_str(d, "resource"), quota=_int(d, "quota"), used=_int(d, "used"),
                   available=_int(d, "available"), retry_after_ns=_int(d, "retry_after_ns"))


def _quotas(v: Any) -> Dict[str, QuotaStatus]:
    out: Dict[str, QuotaStatus] = {}
    for q in v if isinstance(v, list) else []:
        if isinstance(q, dict):
            s = QuotaStatus.from_json(q)
            out[s.resource] = s
    return out


@dataclass
class PrincipalView:
    """GET /v1/principals/{id}: the principal with its quotas by
    resource."""

    id: str
    balance: int
    created_at: str
    quotas: Dict[str, QuotaStatus]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "PrincipalView":
        return cls(id=_str(d, "id"), balance=_int(d, "balance"), created_at=_str(d, "created_at"),
                   quotas=_quotas(d.get("quotas")))


@dataclass
class PrincipalsPage:
    """A page of GET /v1/principals; ``next_cursor`` is None on the last."""

    principals: List[Principal]
    next_cursor: Optional[str] = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "PrincipalsPage":
        return cls(principals=[Principal.from_json(p) for p in _list(d, "principals") if isinstance(p, dict)],
                   next_cursor=_opt_str(d, "next_cursor") or None)


@dataclass
class CreatedPrincipal:
    """POST /v1/principals: the new principal and its token, shown once."""

    principal: Principal
    token: str

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "CreatedPrincipal":
        return cls(principal=Principal.from_json(_dict(d, "principal")), token=_str(d, "token"))


@dataclass
class Quotas:
    """GET /v1/quotas and GET /v1/principals/{id}/quotas, by resource."""

    principal: str
    quotas: Dict[str, QuotaStatus]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Quotas":
        return cls(principal=_str(d, "principal"), quotas=_quotas(d.get("quotas")))


@dataclass
class Right:
    """A right: wrapped quota held by a principal (kernel.Right)."""

    id: str
    resource: str
    amount: int
    holder: str
    created_by: str
    access_contract: str
    revision: int

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Right":
        return cls(id=_str(d, "id"), resource=_str(d, "resource"), amount=_int(d, "amount"), holder=_str(d, "holder"),
                   created_by=_str(d, "created_by"), access_contract=_str(d, "access_contract"),
                   revision=_int(d, "revision"))


@dataclass
class RightsPage:
    """A page of GET /v1/rights or GET /v1/principals/{id}/rights."""

    rights: List[Right]
    holder: str = ""
    next_cursor: Optional[str] = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "RightsPage":
        return cls(rights=[Right.from_json(r) for r in _list(d, "rights") if isinstance(r, dict)],
                   holder=_str(d, "holder"), next_cursor=_opt_str(d, "next_cursor") or None)


@dataclass
class Grant:
    """A consent: ``contract`` may name ``payer`` as payer within its caps
    (kernel.Grant)."""

    payer: str
    contract: str
    terms_sha256: str
    per_call_cap: int
    total_cap: int
    spent: int

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Grant":
        return cls(payer=_str(d, "payer"), contract=_str(d, "contract"), terms_sha256=_str(d, "terms_sha256"),
                   per_call_cap=_int(d, "per_call_cap"), total_cap=_int(d, "total_cap"), spent=_int(d, "spent"))


@dataclass
class ConsentsPage:
    """A page of GET /v1/principals/{id}/consents."""

    payer: str
    consents: List[Grant]
    next_cursor: Optional[str] = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ConsentsPage":
        return cls(payer=_str(d, "payer"),
                   consents=[Grant.from_json(g) for g in _list(d, "consents") if isinstance(g, dict)],
                   next_cursor=_opt_str(d, "next_cursor") or None)


@dataclass
class Standing:
    """An executable a principal let act as it (kernel.Standing); ``valid``
    is false once the executable's code or metadata changed."""

    principal: str
    executable: str
    terms_sha256: str
    valid: bool

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Standing":
        return cls(principal=_str(d, "principal"), executable=_str(d, "executable"),
                   terms_sha256=_str(d, "terms_sha256"), valid=d.get("valid") is True)


@dataclass
class StandingsPage:
    """A page of GET /v1/principals/{id}/standings."""

    principal: str
    standings: List[Standing]
    next_cursor: Optional[str] = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "StandingsPage":
        return cls(principal=_str(d, "principal"),
                   standings=[Standing.from_json(s) for s in _list(d, "standings") if isinstance(s, dict)],
                   next_cursor=_opt_str(d, "next_cursor") or None)


@dataclass
class LLMConsent:
    """A sponsor's consent to pay another principal's LLM calls
    (kernel.LLMConsent): caps and ``spent`` in micro-dollars."""

    sponsor: str
    principal: str
    per_call_cap: int
    total_cap: int
    token_cap: int
    spent: int
    spent_tokens: int

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "LLMConsent":
        return cls(sponsor=_str(d, "sponsor"), principal=_str(d, "principal"), per_call_cap=_int(d, "per_call_cap"),
                   total_cap=_int(d, "total_cap"), token_cap=_int(d, "token_cap"), spent=_int(d, "spent"),
                   spent_tokens=_int(d, "spent_tokens"))


@dataclass
class ListedArtifact:
    """An entry of GET /v1/artifacts: id and type only."""

    id: str
    type: str

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ListedArtifact":
        return cls(id=_str(d, "id"), type=_str(d, "type"))


@dataclass
class ArtifactsPage:
    """A page of GET /v1/artifacts: what the token may see under
    ``prefix``, the checks' ``cpu_rate`` cost, and ``quota_exceeded`` when
    the caller's ``cpu_rate`` ran out mid-page."""

    prefix: str
    artifacts: List[ListedArtifact]
    examined: int
    cpu_rate_charged_us: int
    next_cursor: Optional[str] = None
    quota_exceeded: Optional[Result] = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ArtifactsPage":
        qe = d.get("quota_exceeded")
        return cls(prefix=_str(d, "prefix"),
                   artifacts=[ListedArtifact.from_json(a) for a in _list(d, "artifacts") if isinstance(a, dict)],
                   examined=_int(d, "examined"), cpu_rate_charged_us=_int(d, "cpu_rate_charged_us"),
                   next_cursor=_opt_str(d, "next_cursor") or None,
                   quota_exceeded=Result.from_json(qe) if isinstance(qe, dict) else None)


@dataclass
class Event:
    """One audit event (kernel.Event): never content or metadata."""

    seq: int
    time: str
    caller: str
    kind: str
    allowed: bool
    code: str
    target: str = ""
    to: str = ""
    resource: str = ""
    amount: int = 0
    cpu_us: int = 0
    fuel: int = 0
    depth: int = 0
    reason: str = ""
    message: str = ""
    charges: List[Charge] = field(default_factory=list)
    revision: int = 0
    ids: List[str] = field(default_factory=list)
    amounts: List[int] = field(default_factory=list)
    holder: str = ""
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Event":
        return cls(seq=_int(d, "seq"), time=_str(d, "time"), caller=_str(d, "caller"), kind=_str(d, "kind"),
                   allowed=d.get("allowed") is True, code=_str(d, "code"), target=_str(d, "target"),
                   to=_str(d, "to"), resource=_str(d, "resource"), amount=_int(d, "amount"),
                   cpu_us=_int(d, "cpu_us"), fuel=_int(d, "fuel"), depth=_int(d, "depth"),
                   reason=_str(d, "reason"), message=_str(d, "message"),
                   charges=[Charge.from_json(c) for c in _list(d, "charges") if isinstance(c, dict)],
                   revision=_int(d, "revision"), ids=[s for s in _list(d, "ids") if isinstance(s, str)],
                   amounts=[n for n in _list(d, "amounts") if isinstance(n, int)], holder=_str(d, "holder"),
                   raw=dict(d))


@dataclass
class EventsPage:
    """A page of GET /v1/events: ask again with ``after=next``;
    ``more`` says the page was cut (events are waiting now)."""

    events: List[Event]
    next: int
    more: bool = False

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "EventsPage":
        return cls(events=[Event.from_json(e) for e in _list(d, "events") if isinstance(e, dict)],
                   next=_int(d, "next"), more=bool(d.get("next_cursor")))


@dataclass
class Totals:
    """GET /v1/totals (kernel.Audit): scrip minted, burned and held, and
    quota and right totals per resource."""

    minted: int
    burned: int
    balances: int
    principals: int
    rights: int
    quota_totals: Dict[str, int]
    right_totals: Dict[str, int]
    ledger_ok: bool
    ledger_problem: str = ""

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Totals":
        return cls(minted=_int(d, "minted"), burned=_int(d, "burned"), balances=_int(d, "balances"),
                   principals=_int(d, "principals"), rights=_int(d, "rights"),
                   quota_totals={k: v for k, v in _dict(d, "quota_totals").items() if isinstance(v, int)},
                   right_totals={k: v for k, v in _dict(d, "right_totals").items() if isinstance(v, int)},
                   ledger_ok=d.get("ledger_ok") is True, ledger_problem=_str(d, "ledger_problem"))


@dataclass
class Explanation:
    """POST /v1/explain (api.Explanation): what an action would do now,
    with nothing changed; ``outcome`` is the result it would have."""

    caller: str
    kind: str
    target: str
    outcome: Result
    decision: Optional[Decision] = None
    contract: str = ""
    contract_sha256: str = ""
    target_readable: bool = False
    contract_readable: bool = False
    redacted: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    request: Dict[str, Any] = field(default_factory=dict)
    contract_fuel: int = 0
    cpu_rate_charged_us: int = 0
    spending_limit: int = 0
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Explanation":
        return cls(caller=_str(d, "caller"), kind=_str(d, "kind"), target=_str(d, "target"),
                   outcome=Result.from_json(_dict(d, "outcome")), decision=Decision.from_json(d.get("decision")),
                   contract=_str(d, "contract"), contract_sha256=_str(d, "contract_sha256"),
                   target_readable=d.get("target_readable") is True,
                   contract_readable=d.get("contract_readable") is True,
                   redacted=[s for s in _list(d, "redacted") if isinstance(s, str)],
                   notes=[s for s in _list(d, "notes") if isinstance(s, str)], request=dict(_dict(d, "request")),
                   contract_fuel=_int(d, "contract_fuel"), cpu_rate_charged_us=_int(d, "cpu_rate_charged_us"),
                   spending_limit=_int(d, "spending_limit"), raw=dict(d))


@dataclass
class ChatCompletion:
    """POST /v1/llm/chat without streaming: the provider's answer as it
    came (``response``), and what the gateway charged for it, from the
    ``X-Kernelhost-Llm-*`` headers."""

    response: Dict[str, Any]
    input_tokens: int
    output_tokens: int
    cost_microdollars: int
    event: int

    @property
    def content(self) -> str:
        """The first choice's message text ("" when there is none)."""
        choices = self.response.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            msg = choices[0].get("message")
            if isinstance(msg, dict) and isinstance(msg.get("content"), str):
                return msg["content"]
        return ""
