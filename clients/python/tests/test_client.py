"""The client against a real ``kernelhost serve`` on 127.0.0.1: every
method, the errors with their codes, request_id replays and the retry of a
lost answer, and the live follow resuming after its connection is cut."""

import base64
import json
import threading
import unittest
from typing import Any, Dict, List, Set

from kernelhost import ROUTES, Client, KernelhostError, RetryPolicy, TransportError
from kernelhost.testing import LocalServer

from .helpers import Proxy, binary, collect, repo_file, upstream_of, wait_until

GENESIS = {"principals": [
    {"id": "alice", "balance": 1000, "quotas": {"disk": 16777216}},
    {"id": "bob", "balance": 1000},
    {"id": "sponsor", "balance": 10000, "quotas": {"llm_budget": 5000000}},
    {"id": "mallory", "balance": 0},
]}

# CALLED records the Client methods the tests called, for
# test_zz_every_route_was_exercised.
CALLED: Set[str] = set()
_lock = threading.Lock()


def _recording(name: str, fn: Any) -> Any:
    def method(self: Client, *a: Any, **kw: Any) -> Any:
        with _lock:
            CALLED.add(name)
        return fn(self, *a, **kw)

    method.__name__ = name
    return method


class Recording(Client):
    """A Client that records which route methods were called."""


for _name in set(ROUTES.values()) | {"follow"}:
    setattr(Recording, _name, _recording(_name, getattr(Client, _name)))


def read_wasm(*parts: str) -> bytes:
    with open(repo_file(*parts), "rb") as f:
        return f.read()


class ClientTest(unittest.TestCase):
    srv: LocalServer

    @classmethod
    def setUpClass(cls) -> None:
        cls.srv = LocalServer(GENESIS, binary=binary()).start()
        cls.slept: List[float] = []
        cls.clients: Dict[str, Client] = {}

    @classmethod
    def tearDownClass(cls) -> None:
        for c in cls.clients.values():
            c.close()
        cls.srv.stop()

    def c(self, who: str, **kw: Any) -> Client:
        """The client of principal who ("admin": the admin token); with
        keyword arguments a new one."""
        if kw or who not in self.clients:
            token = self.srv.admin_token if who == "admin" else self.srv.tokens[who]
            c = Recording(self.srv.url, token, sleep=self.slept.append, **kw)
            if kw:
                self.addCleanup(c.close)
                return c
            self.clients[who] = c
        return self.clients[who]

    def balance(self, who: str) -> int:
        return self.c("admin").principal(who).balance

    def assertFails(self, r: Any, code: str, status: int, category: str = "", retriable: bool = False) -> None:
        self.assertFalse(r.ok, r)
        self.assertEqual(r.error_code, code, r.message)
        self.assertEqual(r.status, status, r.message)
        self.assertEqual(r.retriable, retriable, r.message)
        if category:
            self.assertEqual(r.error_category, category)
        self.assertTrue(r.message)

    def assertRaisesCode(self, code: str, status: int, fn: Any, *a: Any, **kw: Any) -> KernelhostError:
        with self.assertRaises(KernelhostError) as cm:
            fn(*a, **kw)
        self.assertEqual((cm.exception.code, cm.exception.status), (code, status), cm.exception.message)
        self.assertNotIsInstance(cm.exception, TransportError)
        return cm.exception

    # -- artifacts ----------------------------------------------------

    def test_write_read_edit_delete(self) -> None:
        alice, bob = self.c("alice"), self.c("bob")
        r = alice.write("alice/notes/1", "hello", type="text", metadata={"topic": "greetings"})
        self.assertTrue(r.ok, r.message)
        self.assertEqual((r.revision, r.status, r.attempts), (1, 200, 1))
        self.assertGreater(r.event, 0)
        self.assertTrue(r.request_id.startswith("py-"))
        r = bob.read("alice/notes/1")
        self.assertTrue(r.ok, r.message)
        self.assertEqual((r.content, r.text), (b"hello", "hello"))
        self.assertEqual(r.artifact.metadata, {"topic": "greetings"})
        self.assertEqual((r.artifact.created_by, r.artifact.type, r.artifact.size), ("alice", "text", 5))
        r = alice.edit("alice/notes/1", metadata={"k": "v"}, unset=["topic"])
        self.assertTrue(r.ok, r.message)
        self.assertEqual(bob.read("alice/notes/1").artifact.metadata, {"k": "v"})
        self.assertFails(bob.write("alice/notes/1", "mine now"), "PERMISSION_DENIED", 403, "permission")
        self.assertFails(bob.edit("alice/notes/1", metadata={"controller": "bob"}), "PERMISSION_DENIED", 403)
        self.assertEqual(bob.read("alice/notes/1").text, "hello", "a refused write changes nothing")
        r = alice.write("alice/blob", b"\x00\xff\x10", type="data")
        self.assertTrue(r.ok, r.message)
        r = bob.read("alice/blob")
        self.assertEqual((r.content, r.text), (b"\x00\xff\x10", None), "binary content has no text")
        self.assertFails(alice.write("alice/untyped", "x"), "INVALID_ARGUMENT", 400, "input")
        self.assertFails(alice.write("alice/notes/1", "x", type="data"), "IMMUTABLE_FIELD", 400)
        self.assertTrue(alice.delete("alice/blob").ok)
        self.assertFails(bob.read("alice/blob"), "NOT_FOUND", 404)
        self.assertFails(alice.delete("alice/blob"), "NOT_FOUND", 404)
        self.assertFails(alice.act("write", target="alice/x", type="text", text="x", to="bob"),
                         "INVALID_ARGUMENT", 400, "input")
        self.assertFails(alice.act("fly", target="x"), "INVALID_ARGUMENT", 400)

    def test_get_and_put_artifact_routes(self) -> None:
        alice, bob = self.c("alice"), self.c("bob")
        r = alice.put_artifact("alice/raw", "raw text", type="text", metadata={"m": "1"})
        self.assertTrue(r.ok, r.message)
        self.assertEqual(r.revision, 1)
        r2 = alice.put_artifact("alice/raw", "raw text", type="text", metadata={"m": "1"}, request_id=r.request_id)
        self.assertTrue(r2.replayed, "PUT carries the request_id too")
        self.assertEqual(r2.event, r.event)
        r = bob.get_artifact("alice/raw")
        self.assertEqual((r.ok, r.text, r.artifact.metadata), (True, "raw text", {"m": "1"}))
        r = bob.get_artifact("alice/raw", raw=True)
        self.assertEqual((r.ok, r.content, r.revision), (True, b"raw text", 1))
        self.assertFails(bob.get_artifact("alice/none", raw=True), "NOT_FOUND", 404)
        self.assertFails(bob.put_artifact("alice/raw", b"\x01", type="data"), "IMMUTABLE_FIELD", 400)
        self.assertFails(bob.put_artifact("alice/raw", b"\x01"), "PERMISSION_DENIED", 403)
        r = alice.put_artifact("alice/exe-raw", read_wasm("host", "testdata", "exec.wasm"), type="executable")
        self.assertTrue(r.ok, r.message)
        self.assertFails(alice.put_artifact("alice/bad-module", b"\x00asm garbage", type="contract"),
                         "CONTRACT_INVALID", 400)

    def test_list_artifacts_shows_what_the_token_may_read(self) -> None:
        alice, bob, admin = self.c("alice"), self.c("bob"), self.c("admin")
        for i in range(3):
            self.assertTrue(alice.write(f"list/open/{i}", "x", type="text").ok)
        self.assertTrue(alice.write("list/secret", "x", type="text", contract="genesis/private").ok)
        page = bob.list_artifacts("list/")
        self.assertEqual([a.id for a in page.artifacts], ["list/open/0", "list/open/1", "list/open/2"])
        self.assertEqual(page.examined, 4)
        self.assertGreaterEqual(page.cpu_rate_charged_us, 1)
        self.assertIn("list/secret", [a.id for a in alice.list_artifacts("list/").artifacts])
        self.assertEqual(admin.list_artifacts("list/").examined, 0, "the admin token lists without checks")
        p1 = bob.list_artifacts("list/", limit=1)
        self.assertEqual(len(p1.artifacts), 1)
        self.assertIsNotNone(p1.next_cursor)
        p2 = bob.list_artifacts("list/", limit=1, cursor=p1.next_cursor)
        self.assertEqual(p2.artifacts[0].id, "list/open/1")
        self.assertEqual([a.id for a in bob.iter_artifacts("list/", limit=1)],
                         ["list/open/0", "list/open/1", "list/open/2"])
        self.assertRaisesCode("INVALID_ARGUMENT", 400, bob.list_artifacts, "list/", cursor="not-a-cursor")
        self.assertRaisesCode("INVALID_ARGUMENT", 400, bob.list_artifacts, "bad prefix!")

    # -- prices, max_cost, consent ------------------------------------

    def deploy_pay_per_read(self, contract: str, **config: str) -> None:
        r = self.c("alice").put_artifact(contract, read_wasm("examples", "c-contract", "pay_per_read.wasm"),
                                         type="contract", metadata=config)
        self.assertTrue(r.ok, r.message)

    def test_priced_read_and_max_cost(self) -> None:
        alice, bob = self.c("alice"), self.c("bob")
        self.deploy_pay_per_read("alice/pay9", price="9", payee="alice")
        self.assertTrue(alice.write("alice/report", "Q1", type="text", contract="alice/pay9").ok)
        before = (self.balance("alice"), self.balance("bob"))
        r = bob.read("alice/report", max_cost=5)
        self.assertFails(r, "COST_LIMIT_EXCEEDED", 403, "permission")
        self.assertEqual(r.decision.cost, 9)
        self.assertEqual((self.balance("alice"), self.balance("bob")), before, "nothing was charged")
        capped = self.c("bob", default_max_cost=5)
        self.assertFails(capped.read("alice/report"), "COST_LIMIT_EXCEEDED", 403)
        self.assertFails(capped.get_artifact("alice/none"), "NOT_FOUND", 404)
        r = bob.read("alice/report", max_cost=9)
        self.assertTrue(r.ok, r.message)
        self.assertEqual(r.text, "Q1")
        self.assertEqual([(c.payer, c.payee, c.amount, c.reason) for c in r.charges], [("bob", "alice", 9, "contract")])
        self.assertEqual(r.decision.payee, "alice")
        self.assertEqual((self.balance("alice"), self.balance("bob")), (before[0] + 9, before[1] - 9))
        ex = bob.explain("read", target="alice/report", max_cost=5)
        self.assertEqual((ex.caller, ex.kind, ex.target, ex.contract), ("bob", "read", "alice/report", "alice/pay9"))
        self.assertEqual(ex.decision.cost, 9)
        self.assertEqual(ex.outcome.error_code, "COST_LIMIT_EXCEEDED")
        self.assertGreater(ex.contract_fuel, 0)
        self.assertEqual((self.balance("alice"), self.balance("bob")), (before[0] + 9, before[1] - 9),
                         "an explanation pays nothing")
        self.assertEqual(bob.explain("read", target="alice/none").outcome.error_code, "NOT_FOUND")
        self.assertRaisesCode("INVALID_ARGUMENT", 400, bob.explain, "transfer", target="alice/report")
        # The spending limit applies where max_cost is not given.
        self.assertTrue(bob.set_spending_limit(3).ok)
        self.assertFails(bob.read("alice/report"), "COST_LIMIT_EXCEEDED", 403)
        self.assertTrue(bob.set_spending_limit(100).ok)
        self.assertTrue(bob.get_artifact("alice/report", raw=True).ok)
        self.assertEqual(self.balance("bob"), before[1] - 18)
        broke = self.c("mallory")
        self.assertFails(broke.read("alice/report", max_cost=9), "INSUFFICIENT_FUNDS", 402, "resource")

    def test_sponsored_reads_need_consent(self) -> None:
        bob, sponsor = self.c("bob"), self.c("sponsor")
        self.deploy_pay_per_read("alice/sponsored", price="4", sponsor="sponsor", payee="alice")
        self.assertTrue(self.c("alice").write("alice/ad", "buy", type="text", contract="alice/sponsored").ok)
        self.assertFails(bob.read("alice/ad"), "PAYER_NOT_AUTHORIZED", 403, "permission")
        self.assertTrue(sponsor.grant_consent("alice/sponsored", per_call_cap=4, total_cap=8).ok)
        before = self.balance("sponsor")
        r = bob.read("alice/ad")
        self.assertTrue(r.ok, r.message)
        self.assertEqual(r.charges[0].payer, "sponsor")
        self.assertEqual(self.balance("sponsor"), before - 4)
        g = sponsor.consent("sponsor", "alice/sponsored")
        self.assertEqual((g.payer, g.contract, g.per_call_cap, g.total_cap, g.spent), ("sponsor", "alice/sponsored",
                                                                                    4, 8, 4))
        self.assertEqual(len(g.terms_sha256), 64)
        page = self.c("admin").consents("sponsor")
        self.assertIn("alice/sponsored", [x.contract for x in page.consents])
        self.assertRaisesCode("PERMISSION_DENIED", 403, bob.consents, "sponsor")
        self.assertTrue(sponsor.revoke_consent("alice/sponsored").ok)
        self.assertRaisesCode("NOT_FOUND", 404, sponsor.consent, "sponsor", "alice/sponsored")
        self.assertFails(bob.read("alice/ad"), "PAYER_NOT_AUTHORIZED", 403)

    # -- executables, standing, contracts -----------------------------

    def test_invoke_standing_and_set_contract(self) -> None:
        alice, bob = self.c("alice"), self.c("bob")
        self.assertTrue(alice.write("alice/exec", read_wasm("host", "testdata", "exec.wasm"), type="executable").ok)
        r = alice.invoke("alice/exec", "log", "hello from the log")
        self.assertTrue(r.ok, r.message)
        self.assertEqual(r.logs, ["hello from the log"])
        self.assertTrue(alice.write("alice/target", "t", type="text").ok)
        r = bob.invoke("alice/exec", "call", {"action": {"kind": "read", "target": "alice/target"}})
        self.assertTrue(r.ok, r.message)
        out = json.loads(r.output_text)
        self.assertTrue(out["ok"], out)
        self.assertEqual(base64.b64decode(out["content"]), b"t", "the host call read as the invoking caller")
        self.assertFails(bob.invoke("alice/exec", "fail"), "EXECUTION_FAILED", 422, "contract")
        self.assertFails(bob.invoke("alice/none", "x"), "NOT_FOUND", 404)
        # An LLM host call needs the invoker's max_llm_cost; this server has no gateway, so one
        # that is allowed reaches the kernel's next check and is refused there.
        ask = {"llm": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}
        out = json.loads(bob.invoke("alice/exec", "call", ask).output_text)
        self.assertEqual(out["error_code"], "PERMISSION_DENIED", out)
        out = json.loads(bob.invoke("alice/exec", "call", ask, max_llm_cost=1000).output_text)
        self.assertEqual(out["error_code"], "UNAVAILABLE", out)
        self.assertTrue(alice.grant_standing("alice/exec").ok)
        st = alice.standings("alice")
        self.assertEqual([(s.executable, s.valid) for s in st.standings], [("alice/exec", True)])
        self.assertRaisesCode("PERMISSION_DENIED", 403, bob.standings, "alice")
        self.assertTrue(alice.revoke_standing("alice/exec").ok)
        self.assertEqual(self.c("admin").standings("alice").standings, [])
        self.assertTrue(alice.set_contract("alice/target", "genesis/private").ok)
        self.assertFails(bob.read("alice/target"), "PERMISSION_DENIED", 403)
        self.assertFails(bob.set_contract("alice/target", "genesis/freeware"), "PERMISSION_DENIED", 403)
        self.assertFails(alice.set_contract("alice/target", "alice/none"), "NOT_FOUND", 404)

    # -- tokens -----------------------------------------------------------

    def test_scoped_token(self) -> None:
        admin = self.c("admin")
        made = admin.create_token("alice", "py-ro", ["read-only"], expires_in_seconds=3600)
        self.assertEqual(made["token"]["name"], "py-ro")
        self.assertTrue(made["secret"].startswith("kh_"))
        ro = Client(self.srv.url, made["secret"])
        self.addCleanup(ro.close)
        self.assertEqual(ro.principal("alice").id, "alice", "a read-only token queries")
        r = ro.transfer("bob", 1)
        self.assertFails(r, "PERMISSION_DENIED", 403)
        self.assertIn("py-ro", r.message)
        names = [t["name"] for t in admin.tokens("alice")]
        self.assertIn("py-ro", names)
        self.assertNotIn(made["secret"], json.dumps(admin.tokens("alice")), "never a secret")
        self.assertEqual(admin.revoke_token("alice", "py-ro")["revoked"], "py-ro")
        self.assertRaisesCode("UNAUTHENTICATED", 401, ro.principal, "alice")

    # -- scrip, quotas, rights ----------------------------------------

    def test_transfer_and_request_id_replay(self) -> None:
        alice = self.c("alice")
        before = self.balance("bob")
        r = alice.transfer("bob", 7, request_id="pay-bob-replay-1")
        self.assertTrue(r.ok, r.message)
        self.assertFalse(r.replayed)
        again = alice.transfer("bob", 7, request_id="pay-bob-replay-1")
        self.assertTrue(again.ok and again.replayed, "the first result, returned again")
        self.assertEqual(again.event, r.event)
        self.assertEqual(self.balance("bob"), before + 7, "applied once")
        self.assertFails(alice.transfer("bob", 8, request_id="pay-bob-replay-1"), "INVALID_ARGUMENT", 400)
        self.assertFails(alice.transfer("nobody", 1), "NOT_FOUND", 404)
        self.assertFails(self.c("mallory").transfer("bob", 1), "INSUFFICIENT_FUNDS", 402)
        self.assertFails(alice.transfer("bob", -1), "INVALID_ARGUMENT", 400)

    def test_lost_answer_is_retried_and_applied_once(self) -> None:
        proxy = Proxy(upstream_of(self.srv.url))
        self.addCleanup(proxy.close)
        proxy.lose_answers = 1
        retried: List[str] = []
        alice = Recording(proxy.url, self.srv.tokens["alice"], on_retry=lambda n, w, why: retried.append(why),
                          sleep=lambda s: None)
        self.addCleanup(alice.close)
        before = self.balance("bob")
        r = alice.transfer("bob", 11)
        self.assertTrue(r.ok, r.message)
        self.assertEqual(r.attempts, 2)
        self.assertTrue(r.replayed, "the retry found the first run's result")
        self.assertEqual(len(retried), 1)
        self.assertEqual(self.balance("bob"), before + 11, "the lost answer's transfer happened once")
        transfers = [e for e in self.c("alice").iter_events(r.event - 1, kind="transfer") if e.seq == r.event]
        self.assertEqual(len(transfers), 1)

    def test_quotas(self) -> None:
        alice, bob, admin = self.c("alice"), self.c("bob"), self.c("admin")
        q = alice.quotas()
        self.assertEqual(q.principal, "alice")
        self.assertEqual(set(q.quotas), {"cpu_rate", "llm_rate", "llm_budget", "disk", "memory"})
        rate = q.quotas["llm_rate"]
        self.assertTrue(alice.consume_quota("llm_rate", 10).ok)
        self.assertEqual(alice.quotas().quotas["llm_rate"].used, rate.used + 10)
        bq = bob.principal_quotas("bob").quotas["llm_rate"].quota
        self.assertTrue(alice.transfer_quota("bob", "llm_rate", 50).ok)
        r = alice.quota_transfer("bob", "llm_rate", 25, request_id="qt-once")
        self.assertTrue(r.ok, r.message)
        again = alice.quota_transfer("bob", "llm_rate", 25, request_id="qt-once")
        self.assertTrue(again.replayed, "the retry is the first result")
        self.assertEqual(again.event, r.event)
        self.assertEqual(self.c("alice").principal_quotas("bob").quotas["llm_rate"].quota, bq + 75)
        self.assertFails(alice.quota_transfer("bob", "gold", 1), "INVALID_ARGUMENT", 400)
        self.assertEqual(admin.set_quota("mallory", "llm_rate", 100).quota, 100)
        self.assertRaisesCode("PERMISSION_DENIED", 403, alice.set_quota, "mallory", "llm_rate", 1)
        self.assertRaisesCode("INVALID_ARGUMENT", 400, admin.set_quota, "mallory", "gold", 1)
        self.assertRaisesCode("PERMISSION_DENIED", 403, admin.quotas)
        mallory = self.c("mallory")
        # More than the whole quota: no wait helps, 403 without Retry-After.
        r = mallory.consume_quota("llm_rate", 101)
        self.assertFails(r, "QUOTA_EXCEEDED", 403, "resource", retriable=False)
        # The window is full: 429, retriable, and a wait (the 60 s window)
        # beyond the client's max_wait is returned at once, not slept.
        self.assertTrue(mallory.consume_quota("llm_rate", 100).ok)
        n = len(self.slept)
        r = mallory.consume_quota("llm_rate", 1)
        self.assertFails(r, "QUOTA_EXCEEDED", 429, "resource", retriable=True)
        self.assertEqual((r.resource, r.available, r.attempts), ("llm_rate", 0, 1))
        self.assertGreater(r.retry_after_seconds, 10)
        self.assertEqual(len(self.slept), n)

    def test_rights(self) -> None:
        alice, bob, admin = self.c("alice"), self.c("bob"), self.c("admin")
        r = alice.mint_right("alice/llm-300", "llm_rate", 300)
        self.assertTrue(r.ok, r.message)
        self.assertIn("alice/llm-300", [x.id for x in alice.rights().rights])
        self.assertTrue(alice.transfer_right("alice/llm-300", "bob").ok)
        self.assertFails(alice.redeem_right("alice/llm-300"), "PERMISSION_DENIED", 403, "permission")
        r = bob.split_right("alice/llm-300", [100, 200])
        self.assertTrue(r.ok, r.message)
        self.assertEqual(r.ids, ["alice/llm-300.1", "alice/llm-300.2"])
        mine = bob.principal_rights("bob")
        self.assertEqual(mine.holder, "bob")
        self.assertEqual({x.id: x.amount for x in mine.rights if x.id.startswith("alice/llm-300")},
                         {"alice/llm-300.1": 100, "alice/llm-300.2": 200})
        self.assertEqual({x.created_by for x in mine.rights}, {"alice"})
        self.assertRaisesCode("PERMISSION_DENIED", 403, alice.principal_rights, "bob")
        self.assertRaisesCode("NOT_FOUND", 404, admin.principal_rights, "nobody")
        self.assertEqual([x.id for x in admin.iter_rights(holder="bob", limit=1)],
                         ["alice/llm-300.1", "alice/llm-300.2"])
        self.assertTrue(bob.merge_rights("alice/llm-300.1", ["alice/llm-300.2"]).ok)
        quota = bob.quotas().quotas["llm_rate"].quota
        self.assertTrue(bob.redeem_right("alice/llm-300.1").ok)
        self.assertEqual(bob.quotas().quotas["llm_rate"].quota, quota + 300)
        self.assertFails(bob.redeem_right("alice/llm-300.1"), "NOT_FOUND", 404)
        self.assertFails(alice.mint_right("alice/huge", "llm_rate", 10 ** 9), "QUOTA_EXCEEDED", 403)
        self.assertFails(alice.split_right("alice/none", [1, 2]), "NOT_FOUND", 404)
        t = admin.totals()
        self.assertTrue(t.ledger_ok, t.ledger_problem)
        self.assertEqual(t.minted, t.balances + t.burned)

    def test_llm_consent(self) -> None:
        sponsor = self.c("sponsor")
        r = sponsor.grant_llm_consent("bob", per_call_cap=1000, total_cap=50000, amount=5000)
        self.assertTrue(r.ok, r.message)
        c = sponsor.llm_consent("sponsor", "bob")
        self.assertEqual((c.sponsor, c.principal, c.per_call_cap, c.total_cap, c.token_cap, c.spent),
                         ("sponsor", "bob", 1000, 50000, 5000, 0))
        self.assertRaisesCode("PERMISSION_DENIED", 403, self.c("bob").llm_consent, "sponsor", "bob")
        self.assertTrue(sponsor.revoke_llm_consent("bob").ok)
        self.assertRaisesCode("NOT_FOUND", 404, sponsor.llm_consent, "sponsor", "bob")
        self.assertFails(sponsor.revoke_llm_consent("bob"), "NOT_FOUND", 404)

    def test_llm_chat_without_a_gateway_is_unavailable(self) -> None:
        e = self.assertRaisesCode("UNAVAILABLE", 503, self.c("bob").llm_chat, "gpt-4o-mini",
                                  [{"role": "user", "content": "hi"}])
        self.assertEqual(e.category, "system")

    # -- principals and the admin token -------------------------------

    def test_principals_and_admin(self) -> None:
        admin, alice = self.c("admin"), self.c("alice")
        created = admin.create_principal("carol", 10)
        self.assertEqual((created.principal.id, created.principal.balance), ("carol", 10))
        self.assertTrue(created.token.startswith("kh_"))
        carol = Recording(self.srv.url, created.token)
        self.addCleanup(carol.close)
        self.assertEqual(carol.whoami(), "carol")
        self.assertIsNone(admin.whoami())
        self.assertEqual(admin.mint("carol", 5).balance, 15)
        self.assertRaisesCode("ALREADY_EXISTS", 409, admin.create_principal, "carol")
        self.assertRaisesCode("INVALID_ARGUMENT", 400, admin.create_principal, "bad id!")
        self.assertRaisesCode("PERMISSION_DENIED", 403, alice.create_principal, "dave")
        self.assertRaisesCode("PERMISSION_DENIED", 403, alice.mint, "alice", 1000)
        self.assertRaisesCode("NOT_FOUND", 404, admin.mint, "nobody", 1)
        self.assertRaisesCode("NOT_FOUND", 404, alice.principal, "nobody")
        v = alice.principal("carol")
        self.assertEqual((v.id, v.balance), ("carol", 15))
        self.assertIn("llm_rate", v.quotas)
        page = alice.principals(limit=2)
        self.assertEqual(len(page.principals), 2)
        self.assertIsNotNone(page.next_cursor)
        ids = [p.id for p in alice.iter_principals(limit=2)]
        self.assertEqual(ids, sorted(ids))
        self.assertTrue({"alice", "bob", "carol", "genesis", "mallory", "sponsor"} <= set(ids))
        t = admin.totals()
        self.assertTrue(t.ledger_ok)
        self.assertEqual(t.principals, len(ids))
        snap = admin.snapshot()
        self.assertTrue(snap.startswith(b"KHSNAP1\n"))
        self.assertIn(b"carol", snap)
        self.assertRaisesCode("PERMISSION_DENIED", 403, alice.snapshot)
        self.assertIn("llm_rate", t.quota_totals)
        self.assertRaisesCode("PERMISSION_DENIED", 403, alice.totals)
        # The admin token acts as no principal.
        self.assertFails(admin.transfer("bob", 1), "PERMISSION_DENIED", 403)
        # A wrong token is refused everywhere, with UNAUTHENTICATED.
        wrong = Recording(self.srv.url, "kh_" + "0" * 64)
        self.addCleanup(wrong.close)
        self.assertFails(wrong.transfer("bob", 1), "UNAUTHENTICATED", 401, "permission")
        self.assertRaisesCode("UNAUTHENTICATED", 401, wrong.principals)
        self.assertRaisesCode("UNAUTHENTICATED", 401, lambda: next(iter(wrong.follow())))

    # -- events -------------------------------------------------------

    def test_events(self) -> None:
        alice, bob, admin = self.c("alice"), self.c("bob"), self.c("admin")
        start = admin.events(0, limit=1000)
        while start.more:
            start = admin.events(start.next, limit=1000)
        mark = start.next
        self.assertTrue(alice.write("ev/private", "p", type="text", contract="genesis/private").ok)
        pay = alice.transfer("bob", 1)
        self.assertTrue(pay.ok)
        self.assertFails(bob.read("ev/private"), "PERMISSION_DENIED", 403)
        mine = list(alice.iter_events(mark))
        self.assertEqual([e.kind for e in mine], ["write", "transfer"], "alice sees her own, not bob's refused read")
        self.assertEqual(mine[1].seq, pay.event)
        self.assertEqual((mine[1].to, mine[1].amount, mine[1].code), ("bob", 1, "OK"))
        bobs = list(bob.iter_events(mark))
        self.assertEqual([(e.kind, e.allowed, e.code) for e in bobs],
                         [("transfer", True, "OK"), ("read", False, "PERMISSION_DENIED")])
        ev = bob.event(pay.event)
        self.assertEqual((ev.seq, ev.caller, ev.kind), (pay.event, "alice", "transfer"))
        self.assertRaisesCode("NOT_FOUND", 404, bob.event, mine[0].seq)
        self.assertEqual([e.seq for e in admin.iter_events(mark, limit=1)], [e.seq for e in
                                                                            admin.events(mark, limit=100).events])
        self.assertEqual([e.kind for e in admin.events(mark, kind="transfer", principal="bob").events], ["transfer"])
        self.assertEqual(admin.events(mark, target="ev/private").events[0].kind, "write")
        self.assertRaisesCode("INVALID_ARGUMENT", 400, alice.events, 0, kind="bogus")

    def test_follow_resumes_after_its_connection_is_cut(self) -> None:
        proxy = Proxy(upstream_of(self.srv.url))
        self.addCleanup(proxy.close)
        alice = self.c("alice")
        mark = alice.transfer("bob", 1).event
        via = Recording(proxy.url, self.srv.tokens["bob"])
        self.addCleanup(via.close)
        stream = via.follow(mark, kind="transfer")
        self.addCleanup(stream.close)
        got: List[Any] = []
        errs: List[BaseException] = []
        collect(stream, got, errs)
        sent = [alice.transfer("bob", 1).event for _ in range(3)]
        wait_until(lambda: len(got) >= 3 or bool(errs), "the first three events")
        proxy.cut()
        sent += [alice.transfer("bob", 1).event for _ in range(3)]
        wait_until(lambda: len(got) >= 6 or bool(errs), "the events after the cut")
        self.assertEqual(errs, [])
        self.assertEqual([e.seq for e in got], sent, "every event once, in order, none before the mark")
        self.assertGreaterEqual(stream.reconnects, 1)
        self.assertEqual(stream.last_id, sent[-1])
        heads = [h.decode("latin-1") for h in proxy.requests]
        self.assertTrue(any(f"Last-Event-ID: {sent[2]}" in h for h in heads),
                        "the resumed follow named the last event it had seen")
        stream.close()

    # -- the server itself --------------------------------------------

    def test_healthz_metrics_openapi(self) -> None:
        bob = self.c("bob")
        self.assertTrue(bob.healthz())
        self.assertIn("kernelhost_actions_total", bob.metrics())
        doc = bob.openapi()
        self.assertTrue(doc["openapi"].startswith("3."))

    def test_openapi_routes_all_have_a_method(self) -> None:
        doc = self.c("bob").openapi()
        documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops
                      if m in ("get", "post", "put", "delete", "patch")}
        self.assertEqual(sorted(documented - set(ROUTES)), [],
                         "routes the server serves that kernelhost.ROUTES (clients/python) has no method for")
        self.assertEqual(sorted(set(ROUTES) - documented), [], "methods for routes the server does not serve")
        for name in ROUTES.values():
            self.assertTrue(callable(getattr(Client, name, None)), name)

    def test_zz_every_route_was_exercised(self) -> None:
        # Runs last (tests run in name order): every route's method was
        # called by the tests above (llm_chat here without a gateway; with
        # one in test_llm).
        self.assertEqual(sorted(set(ROUTES.values()) - CALLED), [])


if __name__ == "__main__":
    unittest.main()
