"""The scripted economy of economy.py on a real kernelhost serve: the
prices the publisher's rule must reach, who paid whom, the market's trades,
and that scrip and llm_budget (quotas plus rights) are conserved."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import economy  # noqa: E402
from kernelhost.testing import LocalServer, require_binary  # noqa: E402


class EconomyTest(unittest.TestCase):
    def test_economy(self) -> None:
        with LocalServer(economy.GENESIS, binary=require_binary()) as srv:
            admin = srv.admin()
            self.addCleanup(admin.close)
            before = admin.totals()
            rep = economy.run(srv.url, srv.tokens, srv.admin_token, rounds=5)
            after = admin.totals()

            # Pricing: every reader bought at 4, 5 and 6; at 7 only carol
            # (worth 9) did, bob (worth 6) passed, so the price held.
            self.assertEqual(rep.prices, [4, 5, 6, 7, 7])
            self.assertEqual(rep.sales, [2, 2, 2, 1, 1])
            self.assertEqual(rep.revenue, 2 * (4 + 5 + 6) + 7 + 7)
            self.assertEqual(rep.income_followed, rep.revenue, "the live follow saw every payment once")
            passes = [line for line in rep.transcript if "passes on" in line]
            self.assertEqual(len(passes), 2)
            self.assertTrue(all(line.endswith("COST_LIMIT_EXCEEDED") for line in passes))

            # Trading: bob's budget (1000) paid three thoughts of 300; the
            # fourth and fifth each needed a right bought from carol.
            self.assertEqual(rep.thoughts, 5)
            self.assertEqual(rep.purchases, ["carol/budget-1", "carol/budget-5"])
            self.assertEqual(rep.listed, rep.purchases)
            self.assertEqual(sum(1 for line in rep.transcript if "out of llm_budget" in line), 2)

            self.assertEqual(rep.balances, {"alice": 1000 + rep.revenue, "bob": 1000 - (4 + 5 + 6) - 2 * 20,
                                            "carol": 1000 - (4 + 5 + 6 + 7 + 7) + 2 * 20, "market": 0})
            self.assertTrue(after.ledger_ok, after.ledger_problem)
            self.assertEqual((after.minted, after.burned), (before.minted, before.burned), "scrip only moved")
            self.assertEqual(after.quota_totals["llm_budget"] + after.right_totals["llm_budget"],
                             before.quota_totals["llm_budget"] + before.right_totals["llm_budget"],
                             "llm_budget: quotas plus rights conserved through mint, sale and redeem")
            self.assertEqual(after.rights, 0, "every right bought was redeemed")
            self.assertEqual(admin.principal("bob").quotas["llm_budget"].used, 5 * 300)

            # Every action went with a request_id of its own, and ran once.
            ids = [r.request_id for r in rep.results]
            self.assertEqual(len(ids), len(set(ids)))
            self.assertFalse(any(r.replayed for r in rep.results))


if __name__ == "__main__":
    unittest.main()
