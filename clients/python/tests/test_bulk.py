"""POST /v1/principals with a list: Client.create_principals."""

import unittest

from kernelhost import Client, KernelhostError
from kernelhost.testing import LocalServer

from .helpers import binary


class BulkTest(unittest.TestCase):
    def test_create_principals(self) -> None:
        with LocalServer({"principals": [{"id": "alice", "balance": 10}]}, binary=binary()) as srv:
            admin = srv.admin()
            self.addCleanup(admin.close)
            made = admin.create_principals([("agent-%03d" % i, i) for i in range(300)] + ["agent-zero"])
            self.assertEqual([c.principal.id for c in made], ["agent-%03d" % i for i in range(300)] + ["agent-zero"])
            self.assertEqual(made[7].principal.balance, 7)
            agent = Client(srv.url, made[299].token)
            self.addCleanup(agent.close)
            self.assertEqual(agent.whoami(), "agent-299")
            # All or none: one id that exists refuses the list.
            with self.assertRaises(KernelhostError) as cm:
                admin.create_principals(["new-1", "alice"])
            self.assertEqual(cm.exception.code, "ALREADY_EXISTS")
            with self.assertRaises(KernelhostError) as cm:
                admin.principal("new-1")
            self.assertEqual(cm.exception.code, "NOT_FOUND")


if __name__ == "__main__":
    unittest.main()
