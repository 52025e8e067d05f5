#!/usr/bin/env python3
"""What an agent loop costs end to end through the Python client.

One agent (or --agents N, each in its own thread with its own client) runs
--actions actions in turn: write its note, read a peer's note, transfer 1
scrip to the peer, edit its note's metadata; each a POST /v1/actions with
its request_id, answered after the action's transaction committed (Badger
with SyncWrites). Prints actions/s, the latency percentiles and the
client's own CPU time per action (the Python side of the cost).

    python3 clients/python/bench/agent_loop.py                     # starts a server of its own
    python3 clients/python/bench/agent_loop.py --actions 1000 --agents 4
    python3 clients/python/bench/agent_loop.py --server http://127.0.0.1:8080 --token $ALICE --peer bob

Without --server it builds kernelhost (or uses $KERNELHOST_BIN) and serves
a fresh world on a loopback port. Exit status 1 when any action failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import List, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from kernelhost import Client, Result  # noqa: E402
from kernelhost.testing import LocalServer  # noqa: E402


def loop(c: Client, me: str, peer: str, n: int, lat: List[float], failed: List[Result]) -> None:
    """n actions of agent me, appending each one's latency (s) to lat."""
    note = f"{me}/bench-note"
    for i in range(n):
        t = time.perf_counter()
        step = i % 4
        if step == 0:
            r = c.write(note, f"step {i}")
        elif step == 1:
            r = c.read(f"{peer}/bench-note")
        elif step == 2:
            r = c.transfer(peer, 1)
        else:
            r = c.edit(note, metadata={"step": str(i)})
        lat.append(time.perf_counter() - t)
        if not r.ok:
            failed.append(r)


def pct(xs: List[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p / 100 * len(s)))] if s else 0.0


def run(server: str, tokens: List[Tuple[str, str, str]], n: int) -> dict:
    """Runs one loop per (principal, token, peer), n actions each, in
    parallel; returns the measurements."""
    clients = [Client(server, tok) for _, tok, _ in tokens]
    # Every agent's note exists before any reads it.
    failed: List[Result] = []
    for (me, _, _), c in zip(tokens, clients):
        r = c.write(f"{me}/bench-note", "start", type="text")
        if not r.ok and r.error_code != "IMMUTABLE_FIELD":
            failed.append(r)
    lats: List[List[float]] = [[] for _ in tokens]
    threads = [threading.Thread(target=loop, args=(c, me, peer, n, lats[i], failed))
               for i, ((me, _, peer), c) in enumerate(zip(tokens, clients))]
    start, cpu = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    for c in clients:
        c.close()
    every = [x for lat in lats for x in lat]
    return {"agents": len(tokens), "actions": len(every), "failed": len(failed),
            "first_failure": f"{failed[0].error_code}: {failed[0].message}" if failed else "",
            "seconds": round(wall, 3), "actions_per_second": round(len(every) / wall, 1) if wall else 0.0,
            "p50_ms": round(pct(every, 50) * 1000, 2), "p99_ms": round(pct(every, 99) * 1000, 2),
            "client_cpu_us_per_action": round(cpu / len(every) * 1e6) if every else 0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--actions", type=int, default=1000, help="actions per agent (default 1000)")
    ap.add_argument("--agents", type=int, default=1, help="agents in parallel, each with its own client")
    ap.add_argument("--server", help="a running server (default: start one)")
    ap.add_argument("--token", help="with --server: the agent's token")
    ap.add_argument("--me", default="alice", help="with --server: the token's principal")
    ap.add_argument("--peer", default="bob", help="with --server: the principal it reads and pays")
    ap.add_argument("--json", action="store_true", help="print the measurements as JSON")
    a = ap.parse_args()
    if a.server:
        if not a.token:
            ap.error("--server needs --token")
        res = run(a.server, [(a.me, a.token, a.peer)], a.actions)
    else:
        names = [f"agent{i}" for i in range(max(a.agents, 1) + (1 if a.agents == 1 else 0))]
        genesis = {"principals": [{"id": n, "balance": a.actions + 100} for n in names]}
        with LocalServer(genesis) as srv:
            for n in names:  # every peer's note exists before anyone reads it
                with Client(srv.url, srv.tokens[n]) as c:
                    c.write(f"{n}/bench-note", "start", type="text").check()
            agents = names[:max(a.agents, 1)]
            tokens = [(n, srv.tokens[n], names[(i + 1) % len(names)]) for i, n in enumerate(agents)]
            res = run(srv.url, tokens, a.actions)
    if a.json:
        print(json.dumps(res))
    else:
        print(f"{res['actions']} actions by {res['agents']} agent(s) in {res['seconds']} s: "
              f"{res['actions_per_second']} actions/s (p50 {res['p50_ms']} ms, p99 {res['p99_ms']} ms; "
              f"client CPU {res['client_cpu_us_per_action']} µs/action), {res['failed']} failed")
        if res["failed"]:
            print("first failure:", res["first_failure"])
    return 1 if res["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
