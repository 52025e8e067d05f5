"""kernelhost: a Python client of the kernelhost HTTP API (docs/http.md).

Standard library only. ``Client(server, token)`` covers every route;
``AsyncClient`` (kernelhost.aio) is the same for asyncio;
``kernelhost.testing.LocalServer`` runs a real server for tests.
"""

from .client import JUDGED_KINDS, KINDS, ROUTES, Client, EventStream, RetryPolicy, __version__
from .errors import KernelhostError, TransportError
from .models import (
    ArtifactInfo,
    ArtifactsPage,
    Charge,
    ChatCompletion,
    ConsentsPage,
    CreatedPrincipal,
    Decision,
    Event,
    EventsPage,
    Explanation,
    Grant,
    ListedArtifact,
    LLMConsent,
    Principal,
    PrincipalsPage,
    PrincipalView,
    Quotas,
    QuotaStatus,
    Result,
    Right,
    RightsPage,
    Standing,
    StandingsPage,
    Totals,
)

__all__ = [
    "JUDGED_KINDS", "KINDS", "ROUTES", "Client", "EventStream", "RetryPolicy", "__version__",
    "KernelhostError", "TransportError",
    "ArtifactInfo", "ArtifactsPage", "Charge", "ChatCompletion", "ConsentsPage", "CreatedPrincipal", "Decision",
    "Event", "EventsPage", "Explanation", "Grant", "ListedArtifact", "LLMConsent", "Principal", "PrincipalsPage",
    "PrincipalView", "Quotas", "QuotaStatus", "Result", "Right", "RightsPage", "Standing", "StandingsPage", "Totals",
]
