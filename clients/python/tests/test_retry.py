"""Retries, against a scripted stub server (no kernelhost needed): which
answers are repeated, after how long, with which request_id, and which are
never repeated. Waits go through a fake sleep that records them."""

import json
import unittest
from typing import List

from kernelhost import Client, KernelhostError, RetryPolicy, TransportError, _transport

from .helpers import Proxy, Stub, error_body, upstream_of

OK = (200, {"Content-Type": "application/json"}, b'{"ok":true,"retriable":false,"event":3}')


def quota(retry_after: str) -> tuple:
    return (429, {"Retry-After": retry_after},
            error_body("QUOTA_EXCEEDED", True, resource="llm_rate", available=0, retry_after_seconds=1.5))


class RetryTest(unittest.TestCase):
    def setUp(self) -> None:
        self.slept: List[float] = []
        self.stub = None
        self.proxy = None

    def tearDown(self) -> None:
        if self.proxy is not None:
            self.proxy.close()
        if self.stub is not None:
            self.stub.close()

    def client(self, url: str, **kw) -> Client:
        c = Client(url, "kh_" + "0" * 64, sleep=self.slept.append, **kw)
        self.addCleanup(c.close)
        return c

    def bodies(self) -> List[dict]:
        return [json.loads(b) for _, _, _, b in self.stub.seen]

    def test_retriable_answer_waits_retry_after_and_resends_the_same_request_id(self) -> None:
        self.stub = Stub([quota("2"), quota("3"), OK])
        r = self.client(self.stub.url).transfer("bob", 5)
        self.assertTrue(r.ok)
        self.assertEqual(r.attempts, 3)
        self.assertEqual(self.slept, [2.0, 3.0], "Retry-After, the header's seconds, is what is waited")
        bodies = self.bodies()
        self.assertEqual(len(bodies), 3)
        self.assertTrue(bodies[0]["request_id"].startswith("py-"))
        self.assertEqual(bodies[0], bodies[1])
        self.assertEqual(bodies[0], bodies[2], "a retry is the same action with the same request_id")
        self.assertEqual(r.request_id, bodies[0]["request_id"])

    def test_retry_after_seconds_in_the_body_when_no_header(self) -> None:
        self.stub = Stub([(429, {}, error_body("QUOTA_EXCEEDED", True, retry_after_seconds=1.5)), OK])
        self.assertTrue(self.client(self.stub.url).consume_quota("llm_rate", 5).ok)
        self.assertEqual(self.slept, [1.5])

    def test_wait_beyond_max_wait_is_returned_at_once(self) -> None:
        self.stub = Stub([quota("60")])
        r = self.client(self.stub.url, retry=RetryPolicy(max_wait=10)).consume_quota("llm_rate", 900)
        self.assertFalse(r.ok)
        self.assertEqual((r.error_code, r.error_category, r.retriable, r.status), ("QUOTA_EXCEEDED", "resource",
                                                                                     True, 429))
        self.assertEqual((r.resource, r.retry_after_seconds, r.attempts), ("llm_rate", 1.5, 1))
        self.assertEqual(self.slept, [], "a minute's wait is the agent's to choose, not the client's")

    def test_not_retriable_is_never_repeated(self) -> None:
        self.stub = Stub([(403, {}, error_body("PERMISSION_DENIED", False)), OK])
        r = self.client(self.stub.url).write("x", "y", type="text")
        self.assertEqual((r.ok, r.error_code, r.attempts, len(self.stub.seen)), (False, "PERMISSION_DENIED", 1, 1))
        self.assertEqual(self.slept, [])

    def test_retriable_without_a_wait_backs_off_and_stops_at_attempts(self) -> None:
        self.stub = Stub([(503, {}, error_body("UNAVAILABLE", True))] * 5)
        r = self.client(self.stub.url, retry=RetryPolicy(attempts=3, backoff=0.2)).transfer("bob", 1)
        self.assertEqual((r.ok, r.error_code, r.retriable, r.attempts), (False, "UNAVAILABLE", True, 3))
        self.assertEqual(self.slept, [0.2, 0.4])
        self.assertEqual(len(self.stub.seen), 3)

    def test_attempts_one_turns_retries_off(self) -> None:
        self.stub = Stub([quota("1"), OK])
        r = self.client(self.stub.url, retry=RetryPolicy(attempts=1)).transfer("bob", 1)
        self.assertEqual((r.error_code, r.attempts, self.slept), ("QUOTA_EXCEEDED", 1, []))

    def test_lost_answer_of_an_action_is_retried_with_its_request_id(self) -> None:
        self.stub = Stub([OK, OK])
        self.proxy = Proxy(upstream_of(self.stub.url))
        self.proxy.lose_answers = 1
        r = self.client(self.proxy.url).transfer("bob", 5, request_id="pay-bob-0001")
        self.assertTrue(r.ok)
        self.assertEqual(r.attempts, 2)
        self.assertEqual([b["request_id"] for b in self.bodies()], ["pay-bob-0001", "pay-bob-0001"])

    def test_lost_answer_without_request_id_is_not_retried(self) -> None:
        self.stub = Stub([(200, {}, b'{"ok":true,"principal":{"id":"bob","balance":5}}')] * 2)
        self.proxy = Proxy(upstream_of(self.stub.url))
        self.proxy.lose_answers = 1
        with self.assertRaises(TransportError) as cm:
            self.client(self.proxy.url).mint("bob", 5)
        self.assertTrue(cm.exception.sent, "the mint may have happened")
        self.assertEqual(cm.exception.code, "UNAVAILABLE")
        self.assertEqual(len(self.stub.seen), 1, "a mint has no request_id: sending it again could mint twice")

    def test_lost_answer_of_a_get_read_is_not_retried(self) -> None:
        self.stub = Stub([OK, OK])
        self.proxy = Proxy(upstream_of(self.stub.url))
        self.proxy.lose_answers = 1
        with self.assertRaises(TransportError):
            self.client(self.proxy.url).get_artifact("priced/doc")
        self.assertEqual(len(self.stub.seen), 1, "GET /v1/artifacts/{id} may charge, and has no request_id")

    def test_refused_connection_is_retried_then_raised(self) -> None:
        self.stub = Stub([])
        url = self.stub.url
        self.stub.close()
        self.stub = None
        with self.assertRaises(TransportError) as cm:
            self.client(url, retry=RetryPolicy(attempts=3)).mint("bob", 5)
        self.assertFalse(cm.exception.sent, "nothing left: even a mint may be tried again")
        self.assertEqual(self.slept, [0.2, 0.4])

    def test_redirect_is_not_followed(self) -> None:
        self.stub = Stub([(307, {"Location": "/v1/artifacts/other"}, b"")])
        with self.assertRaises(TransportError) as cm:
            self.client(self.stub.url).read("doc")
        self.assertIn("redirect", cm.exception.message)
        self.assertEqual(len(self.stub.seen), 1)

    def test_not_json_is_a_transport_error(self) -> None:
        self.stub = Stub([(502, {"Content-Type": "text/html"}, b"<html>bad gateway</html>")])
        with self.assertRaises(TransportError):
            self.client(self.stub.url).principal("bob")

    def test_answer_over_the_bound_is_refused(self) -> None:
        big = b'{"ok":true,"pad":"' + b"x" * 200 + b'"}'
        self.stub = Stub([(200, {}, big), (200, {"Transfer-Encoding": "chunked"}, big),
                          (200, {"Transfer-Encoding": "chunked"}, b'{"ok":true,"id":"bob","balance":1}')])
        old = _transport.MAX_ANSWER
        _transport.MAX_ANSWER = 100
        self.addCleanup(setattr, _transport, "MAX_ANSWER", old)
        c = self.client(self.stub.url, retry=RetryPolicy(attempts=1))
        for _ in range(2):  # with a Content-Length, and chunked
            with self.assertRaises(TransportError) as cm:
                c.principal("bob")
            self.assertIn("exceeds 100 bytes", cm.exception.message)
        self.assertEqual(c.principal("bob").balance, 1, "a chunked answer within the bound is read whole")

    def test_query_error_raises_with_the_stable_code(self) -> None:
        self.stub = Stub([(404, {}, error_body("NOT_FOUND", False))])
        with self.assertRaises(KernelhostError) as cm:
            self.client(self.stub.url).principal("nobody")
        e = cm.exception
        self.assertEqual((e.code, e.status, e.retriable, e.category), ("NOT_FOUND", 404, False, "system"))

    def test_llm_chat_retries_only_quota(self) -> None:
        self.stub = Stub([(503, {}, error_body("UNAVAILABLE", True)), OK])
        with self.assertRaises(KernelhostError) as cm:
            self.client(self.stub.url).llm_chat("m", [{"role": "user", "content": "hi"}])
        self.assertEqual(cm.exception.code, "UNAVAILABLE")
        self.assertEqual(len(self.stub.seen), 1, "a provider failure was charged its reservation: never resent")
        self.stub.answers = [quota("2"), (200, {"X-Kernelhost-Llm-Cost-Microdollars": "4"}, b'{"choices":[]}')]
        c = self.client(self.stub.url).llm_chat("m", [{"role": "user", "content": "hi"}])
        self.assertEqual((c.cost_microdollars, self.slept), (4, [2.0]))

    def test_default_max_cost_goes_on_judged_actions_only(self) -> None:
        self.stub = Stub([OK, OK, OK, OK])
        c = self.client(self.stub.url, default_max_cost=7)
        c.read("doc")
        c.read("doc", max_cost=50)
        c.transfer("bob", 1)
        c.invoke("exe", "m", {"a": 1})
        b = self.bodies()
        self.assertEqual(b[0]["max_cost"], 7)
        self.assertEqual(b[1]["max_cost"], 50)
        self.assertNotIn("max_cost", b[2], "a transfer has no price: the server refuses max_cost on it")
        self.assertEqual((b[3]["max_cost"], b[3]["args_text"]), (7, '{"a":1}'))

    def test_bad_input_is_refused_before_anything_is_sent(self) -> None:
        self.stub = Stub([OK] * 8)
        c = self.client(self.stub.url)
        for call in (lambda: c.principal("x/../y"), lambda: c.principal_quotas(""),
                     lambda: c.get_artifact("a//b"), lambda: c.get_artifact("../etc/passwd"),
                     lambda: c.consent("sponsor", "a/"), lambda: c.transfer("bob", 1, request_id="no spaces"),
                     lambda: c.event(0), lambda: c.events(-1)):
            with self.assertRaises(KernelhostError) as cm:
                call()
            self.assertEqual(cm.exception.code, "INVALID_ARGUMENT")
        self.assertEqual(self.stub.seen, [])
        for url in ("ftp://h", "http://user:pw@127.0.0.1:1", "http://127.0.0.1:1/?token=x"):
            with self.assertRaises(KernelhostError):
                Client(url, "kh_x")
        with self.assertRaises(KernelhostError):
            Client(self.stub.url, "")

    def test_slash_in_a_principal_id_stays_in_its_segment(self) -> None:
        self.stub = Stub([(200, {}, b'{"ok":true,"id":"team/a","balance":3}')])
        v = self.client(self.stub.url).principal("team/a")
        self.assertEqual(self.stub.seen[0][1], "/v1/principals/team%2Fa", "not the route /v1/principals/team/...")
        self.assertEqual((v.id, v.balance), ("team/a", 3))


if __name__ == "__main__":
    unittest.main()
