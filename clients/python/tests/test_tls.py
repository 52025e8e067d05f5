"""The client of an HTTPS server (kernelhost serve --tls-cert/--tls-key):
its certificate is checked against ca_file; without it (the system's roots)
and over plain http the client gets no answer from the API."""

import os
import unittest

from kernelhost import Client, KernelhostError, RetryPolicy, TransportError
from kernelhost.testing import LocalServer

from .helpers import binary

TLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata", "tls")  # made by make.sh there
CA, CERT, KEY = (os.path.join(TLS, f) for f in ("ca.pem", "server.crt", "server.key"))
ONE = {"principals": [{"id": "alice", "balance": 1000}]}


class TLSTest(unittest.TestCase):
    def test_https_with_a_ca_file(self) -> None:
        with LocalServer(ONE, binary=binary(), serve_args=["--tls-cert", CERT, "--tls-key", KEY]) as srv:
            self.assertTrue(srv.url.startswith("https://127.0.0.1:"), srv.url)
            alice = srv.client("alice", ca_file=CA)
            self.addCleanup(alice.close)
            self.assertEqual(alice.whoami(), "alice")
            self.assertEqual(alice.principal("alice").balance, 1000)
            self.assertTrue(alice.write("alice/tls", "over TLS", type="text").ok)
            self.assertEqual(alice.read("alice/tls").text, "over TLS")

            # The system's roots do not know the test CA.
            stranger = srv.client("alice", retry=RetryPolicy(attempts=1))
            self.addCleanup(stranger.close)
            with self.assertRaises(TransportError) as cm:
                stranger.whoami()
            self.assertIn("CERTIFICATE", str(cm.exception).upper())

            # Plain http to the HTTPS port: no answer of the API.
            plain = Client(srv.url.replace("https://", "http://"), srv.tokens["alice"], retry=RetryPolicy(attempts=1))
            self.addCleanup(plain.close)
            with self.assertRaises(KernelhostError):
                plain.whoami()

    def test_ca_file_and_ssl_context_exclude_each_other(self) -> None:
        import ssl
        with self.assertRaises(KernelhostError) as cm:
            Client("https://127.0.0.1:1", "kh_x", ca_file=CA, ssl_context=ssl.create_default_context())
        self.assertEqual(cm.exception.code, "INVALID_ARGUMENT")


if __name__ == "__main__":
    unittest.main()
