"""bench/agent_loop.py, the measurement of the README, runs and reports
what it did (a short loop: its figures are not checked, only its counts)."""

import json
import os
import subprocess
import sys
import unittest

from .helpers import binary

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "agent_loop.py")


class BenchTest(unittest.TestCase):
    def test_agent_loop_runs(self) -> None:
        env = dict(os.environ, KERNELHOST_BIN=binary())
        p = subprocess.run([sys.executable, BENCH, "--actions", "40", "--agents", "2", "--json"],
                           capture_output=True, text=True, env=env, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        res = json.loads(p.stdout)
        self.assertEqual((res["agents"], res["actions"], res["failed"]), (2, 80, 0), res)
        self.assertGreater(res["actions_per_second"], 0)


if __name__ == "__main__":
    unittest.main()
