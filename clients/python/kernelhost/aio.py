"""An asyncio variant of :class:`kernelhost.Client`, still only the standard
library: each call runs the synchronous client's method in a worker thread
(``loop.run_in_executor``), so the event loop never blocks and many calls
can be in flight at once, each thread on its own kept-alive connection.

``AsyncClient`` has every method of ``Client`` with the same arguments and
results, as coroutines; ``follow`` is an async iterator and
``llm_chat_stream`` an async generator.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from typing import Any, AsyncIterator, Dict, Optional

from .client import Client, EventStream
from .models import Event

__all__ = ["AsyncClient", "AsyncEventStream"]

# _SYNC are the methods of Client that return iterators: they get async
# counterparts of their own below instead of a plain coroutine wrapper.
_SYNC = {"follow", "llm_chat_stream", "iter_artifacts", "iter_principals", "iter_rights", "iter_events",
         "close", "new_request_id"}

_END = object()


def _next(it: Any) -> Any:
    try:
        return next(it)
    except StopIteration:
        return _END


class AsyncEventStream:
    """:class:`kernelhost.EventStream` as an async iterator (``async for``);
    ``aclose()`` ends it, also while a read waits."""

    def __init__(self, stream: EventStream) -> None:
        self._s = stream

    @property
    def last_id(self) -> int:
        """The last event number seen, to resume from."""
        return self._s.last_id

    def __aiter__(self) -> "AsyncEventStream":
        return self

    async def __anext__(self) -> Event:
        ev = await asyncio.get_running_loop().run_in_executor(None, _next, self._s)
        if ev is _END:
            raise StopAsyncIteration
        return ev

    async def aclose(self) -> None:
        """Ends the follow."""
        self._s.close()

    async def __aenter__(self) -> "AsyncEventStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._s.close()


class AsyncClient:
    """:class:`kernelhost.Client` for asyncio: ``await client.transfer(...)``.
    Takes the same arguments as ``Client``; ``sleep`` waits in the worker
    thread, as the synchronous client's retries do."""

    def __init__(self, server: str, token: str, **kwargs: Any) -> None:
        self.sync = Client(server, token, **kwargs)

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kwargs))

    def follow(self, after: int = 0, **kwargs: Any) -> AsyncEventStream:
        """:meth:`Client.follow` as an async iterator."""
        return AsyncEventStream(self.sync.follow(after, **kwargs))

    async def _aiter(self, it: Any) -> AsyncIterator[Any]:
        loop = asyncio.get_running_loop()
        try:
            while True:
                v = await loop.run_in_executor(None, _next, it)
                if v is _END:
                    return
                yield v
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    def llm_chat_stream(self, model: str, messages: Any, **fields: Any) -> AsyncIterator[Dict[str, Any]]:
        """:meth:`Client.llm_chat_stream` as an async generator."""
        return self._aiter(self.sync.llm_chat_stream(model, messages, **fields))

    def iter_artifacts(self, prefix: str = "", **kwargs: Any) -> AsyncIterator[Any]:
        """:meth:`Client.iter_artifacts` as an async generator."""
        return self._aiter(self.sync.iter_artifacts(prefix, **kwargs))

    def iter_principals(self, **kwargs: Any) -> AsyncIterator[Any]:
        """:meth:`Client.iter_principals` as an async generator."""
        return self._aiter(self.sync.iter_principals(**kwargs))

    def iter_rights(self, **kwargs: Any) -> AsyncIterator[Any]:
        """:meth:`Client.iter_rights` as an async generator."""
        return self._aiter(self.sync.iter_rights(**kwargs))

    def iter_events(self, after: int = 0, **kwargs: Any) -> AsyncIterator[Any]:
        """:meth:`Client.iter_events` as an async generator."""
        return self._aiter(self.sync.iter_events(after, **kwargs))

    def new_request_id(self) -> str:
        """A fresh request_id."""
        return self.sync.new_request_id()

    async def close(self) -> None:
        """Closes the connections the client's worker threads keep (each
        closes with its thread)."""
        self.sync.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


def _wrap(name: str, fn: Any) -> Any:
    @functools.wraps(fn)
    async def method(self: AsyncClient, *args: Any, **kwargs: Any) -> Any:
        return await self._run(getattr(self.sync, name), *args, **kwargs)

    return method


for _name, _fn in inspect.getmembers(Client, inspect.isfunction):
    if not _name.startswith("_") and _name not in _SYNC:
        setattr(AsyncClient, _name, _wrap(_name, _fn))


def _missing() -> Optional[str]:
    """The public methods of Client that AsyncClient lacks (None: none);
    the tests hold it to None."""
    lacking = [n for n, _ in inspect.getmembers(Client, inspect.isfunction)
               if not n.startswith("_") and not hasattr(AsyncClient, n)]
    return ", ".join(lacking) or None
