"""The client across a server restart, the asyncio client, and the LLM
gateway (with a fake OpenAI-compatible provider), each on a kernelhost
serve of its own."""

import asyncio
import json
import os
import tempfile
import unittest
from typing import Any, List

from kernelhost import KernelhostError, RetryPolicy
from kernelhost.aio import AsyncClient, _missing
from kernelhost.testing import LocalServer

from .helpers import FakeProvider, binary, collect, wait_until

TWO = {"principals": [{"id": "alice", "balance": 1000}, {"id": "bob", "balance": 1000}]}


class RestartTest(unittest.TestCase):
    def test_follow_and_actions_survive_a_restart(self) -> None:
        with LocalServer(TWO, binary=binary()) as srv:
            alice = srv.client("alice", retry=RetryPolicy(attempts=50, backoff=0.1, max_backoff=0.5))
            self.addCleanup(alice.close)
            bob = srv.client("bob")
            self.addCleanup(bob.close)
            mark = alice.transfer("bob", 1).event
            stream = bob.follow(mark, max_backoff=0.5)
            self.addCleanup(stream.close)
            got: List[Any] = []
            errs: List[BaseException] = []
            collect(stream, got, errs)
            sent = [alice.transfer("bob", 1).event for _ in range(2)]
            wait_until(lambda: len(got) >= 2 or bool(errs), "the events before the restart")
            srv.restart()
            # The kept connection of alice's client died with the server:
            # the next action goes through on a new one.
            sent += [alice.transfer("bob", 1).event for _ in range(2)]
            wait_until(lambda: len(got) >= 4 or bool(errs), "the events after the restart")
            self.assertEqual(errs, [])
            self.assertEqual([e.seq for e in got], sent, "no gap and no duplicate across the restart")
            self.assertGreaterEqual(stream.reconnects, 1)
            stream.close()
            self.assertEqual(srv.admin().principal("bob").balance, 1005)

    def test_follow_without_reconnect_ends_with_the_stream(self) -> None:
        with LocalServer(TWO, binary=binary()) as srv:
            bob = srv.client("bob")
            self.addCleanup(bob.close)
            stream = bob.follow(0, reconnect=False)
            got: List[Any] = []
            errs: List[BaseException] = []
            t = collect(stream, got, errs)
            self.assertTrue(srv.client("alice").transfer("bob", 1).ok)
            wait_until(lambda: len(got) >= 1, "the transfer")
            srv.restart()
            t.join(30)
            self.assertFalse(t.is_alive(), "the follow ended when the server went away")
            self.assertEqual(len(got), 1)
            stream.close()


class AsyncTest(unittest.TestCase):
    def test_async_client(self) -> None:
        self.assertIsNone(_missing(), "AsyncClient has every method of Client")
        with LocalServer(TWO, binary=binary()) as srv:
            async def main() -> None:
                async with AsyncClient(srv.url, srv.tokens["alice"]) as alice, \
                        AsyncClient(srv.url, srv.tokens["bob"]) as bob:
                    mark = (await alice.transfer("bob", 1)).event
                    results = await asyncio.gather(*(alice.transfer("bob", 2) for _ in range(10)))
                    self.assertTrue(all(r.ok for r in results))
                    self.assertEqual(len({r.request_id for r in results}), 10, "one request_id per action")
                    self.assertEqual((await bob.principal("bob")).balance, 1021)
                    w = await bob.write("alice/x", "no", type="text")
                    self.assertTrue(w.ok, w.message)
                    r = await alice.write("alice/x", "mine?", type="text")
                    self.assertEqual(r.error_code, "PERMISSION_DENIED")
                    with self.assertRaises(KernelhostError) as cm:
                        await alice.principal("nobody")
                    self.assertEqual(cm.exception.code, "NOT_FOUND")
                    seen = []
                    async with bob.follow(mark) as stream:
                        async for ev in stream:
                            seen.append(ev.seq)
                            if len(seen) == 11:
                                break
                    self.assertEqual(seen, sorted(r.event for r in results) + [w.event],
                                     "in order, each once (not alice's refused write: bob is no party to it)")
                    ids = [p.id async for p in alice.iter_principals(limit=1)]
                    self.assertEqual(ids, ["alice", "bob", "genesis"])

            asyncio.run(main())


class LLMTest(unittest.TestCase):
    def test_llm_chat_through_the_gateway(self) -> None:
        prov = FakeProvider()
        self.addCleanup(prov.close)
        prices = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump({"tiny": {"input_per_1k": 1000, "output_per_1k": 2000}}, prices)
        prices.close()
        self.addCleanup(os.unlink, prices.name)
        genesis = {"principals": [{"id": "alice", "balance": 10, "quotas": {"llm_budget": 1000, "llm_rate": 5000}},
                                  {"id": "bob", "balance": 10}]}
        with LocalServer(genesis, binary=binary(),
                         serve_args=["--llm-endpoint", prov.url, "--llm-prices", prices.name,
                                     "--llm-max-tokens", "50"]) as srv:
            alice = srv.client("alice")
            self.addCleanup(alice.close)
            msgs = [{"role": "user", "content": "hi"}]
            c = alice.llm_chat("tiny", msgs, max_tokens=20)
            self.assertEqual(c.content, "hi from tiny")
            # 7 tokens at 1000 u$/1k and 3 at 2000 u$/1k, each side rounded up.
            self.assertEqual((c.input_tokens, c.output_tokens, c.cost_microdollars), (7, 3, 13))
            self.assertGreater(c.event, 0)
            ev = alice.event(c.event)
            self.assertEqual((ev.kind, ev.target, ev.amounts, ev.amount), ("llm_call", "tiny", [7, 3], 13))
            chunks = list(alice.llm_chat_stream("tiny", msgs, max_tokens=20))
            text = "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks if ch.get("choices"))
            self.assertEqual(text, "hi from tiny")
            self.assertTrue(prov.requests[-1]["stream"])
            q = alice.quotas().quotas["llm_budget"]
            self.assertEqual(q.used, 26, "both calls charged what the provider reported")
            with self.assertRaises(KernelhostError) as cm:
                alice.llm_chat("unpriced", msgs)
            self.assertEqual((cm.exception.code, cm.exception.status), ("INVALID_ARGUMENT", 400))
            with self.assertRaises(KernelhostError) as cm:
                list(alice.llm_chat_stream("unpriced", msgs))
            self.assertEqual(cm.exception.code, "INVALID_ARGUMENT")
            # bob has no llm_budget: refused before anything is sent, and
            # no wait helps (403, not retried).
            bob = srv.client("bob", sleep=lambda s: self.fail("slept"))
            self.addCleanup(bob.close)
            n = len(prov.requests)
            with self.assertRaises(KernelhostError) as cm:
                bob.llm_chat("tiny", msgs, max_tokens=5)
            self.assertEqual((cm.exception.code, cm.exception.status, cm.exception.retriable),
                             ("QUOTA_EXCEEDED", 403, False))
            self.assertEqual(len(prov.requests), n, "the provider saw nothing")
            with self.assertRaises(KernelhostError):
                srv.admin().llm_chat("tiny", msgs)
            # alice sponsors bob: ?payer=alice bills her, under her consent.
            with self.assertRaises(KernelhostError) as cm:
                bob.llm_chat("tiny", msgs, max_tokens=5, payer="alice")
            self.assertEqual((cm.exception.code, cm.exception.status), ("PAYER_NOT_AUTHORIZED", 403))
            self.assertTrue(alice.grant_llm_consent("bob", per_call_cap=500, total_cap=1000, amount=2000).ok)
            c = bob.llm_chat("tiny", msgs, max_tokens=5, payer="alice")
            self.assertEqual((c.content, c.cost_microdollars), ("hi from tiny", 13))
            self.assertEqual(alice.quotas().quotas["llm_budget"].used, 39, "the sponsor paid")
            self.assertEqual(alice.llm_consent("alice", "bob").spent, 13)
            chunks = list(bob.llm_chat_stream("tiny", msgs, max_tokens=5, payer="alice"))
            self.assertTrue(chunks)
            self.assertEqual(alice.quotas().quotas["llm_budget"].used, 52)
            self.assertEqual(bob.quotas().quotas["llm_budget"].used, 0)


if __name__ == "__main__":
    unittest.main()
