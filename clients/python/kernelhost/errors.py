"""Errors of the kernelhost client.

Every failure carries the kernel's stable code (``code``), its category and
whether repeating the request unchanged may succeed (``retriable``), as the
server's JSON error does (docs/http.md, "Errors"). Failures that never
reached the kernel (the server could not be reached, or answered something
that is not kernelhost's) are :class:`TransportError`, code ``UNAVAILABLE``.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .models import Result

__all__ = ["KernelhostError", "TransportError"]


class KernelhostError(Exception):
    """A request the server refused or failed, with its stable code.

    Actions (``Client.write``, ``Client.transfer``, ...) do not raise it for
    a refused action: they return the :class:`~kernelhost.Result` with
    ``ok`` false (call ``Result.check()`` to raise instead). The queries
    (``Client.principal``, ``Client.totals``, ...) raise it.
    """

    def __init__(self, code: str, message: str, *, category: str = "", retriable: bool = False, status: int = 0,
                 retry_after: Optional[float] = None, request_id: str = "",
                 body: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.category = category
        self.retriable = retriable
        self.status = status
        # retry_after is the server's wait in seconds (Retry-After), when it
        # named one: only then does waiting help.
        self.retry_after = retry_after
        self.request_id = request_id
        self.body = dict(body or {})

    @classmethod
    def from_body(cls, status: int, body: Mapping[str, Any], retry_after: Optional[float] = None,
                  request_id: str = "") -> "KernelhostError":
        """The error of a JSON error answer (api.Error)."""
        code = body.get("error_code")
        msg = body.get("message")
        return cls(code if isinstance(code, str) and code else "INTERNAL",
                   msg if isinstance(msg, str) else "",
                   category=body.get("error_category") if isinstance(body.get("error_category"), str) else "",
                   retriable=body.get("retriable") is True, status=status, retry_after=retry_after,
                   request_id=request_id, body=body)

    @classmethod
    def from_result(cls, r: "Result") -> "KernelhostError":
        """The error of a failed action's result."""
        return cls(r.error_code or "INTERNAL", r.message, category=r.error_category, retriable=r.retriable,
                   status=r.status, retry_after=r.retry_after_seconds or None, request_id=r.request_id,
                   body=r.raw)


class TransportError(KernelhostError):
    """The server could not be reached, the connection broke, or the answer
    was not kernelhost's (not JSON, a redirect). ``sent`` says whether the
    request may have reached the server: an action without a request_id
    that failed after it was sent may or may not have happened."""

    def __init__(self, message: str, *, sent: bool, status: int = 0, request_id: str = "") -> None:
        super().__init__("UNAVAILABLE", message, category="system", retriable=True, status=status,
                         request_id=request_id)
        self.sent = sent
