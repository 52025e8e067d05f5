#!/usr/bin/env python3
"""A small economy of scripted agents (no LLM) on kernelhost, through the
Python client (clients/python).

- **alice, the publisher**, writes a report each round under her own
  pay-per-read contract (examples/c-contract) and prices it: after each
  round she counts the paid reads in her audit trail and raises the price
  when every reader bought, lowers it when none did.
- **bob and carol, the readers**, buy each report when its price is within
  what it is worth to them: ``max_cost`` makes the kernel refuse a dearer
  read (``COST_LIMIT_EXCEEDED``) and charge nothing.
- **bob also thinks**: each round costs him 300 of his ``llm_budget``
  (micro-dollars, depletable). When it runs out (``QUOTA_EXCEEDED``, not
  retriable: no wait helps), he buys capacity on the market instead.
- **carol, the seller**, wraps spare ``llm_budget`` into rights and lists
  them with the escrow of examples/rights-market, which swaps a right for
  scrip in one invocation.
- **market** runs the escrow (``escrow/market``, acting as principal
  ``market`` through its standing).
- **the accountant** follows alice's audit trail live and adds up her
  income, as a dashboard would.

    python3 examples/agents-python/economy.py            # builds kernelhost and serves a world of its own
    KERNELHOST_BIN=/tmp/kernelhost python3 examples/agents-python/economy.py --rounds 8
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
try:
    import kernelhost  # noqa: F401 - installed with pip install ./clients/python
except ImportError:  # run from the repository
    sys.path.insert(0, os.path.join(REPO, "clients", "python"))

from kernelhost import Client, Event, Result  # noqa: E402
from kernelhost.testing import LocalServer  # noqa: E402

PAY_PER_READ = os.path.join(REPO, "examples", "c-contract", "pay_per_read.wasm")
ESCROW = os.path.join(REPO, "examples", "rights-market", "escrow", "escrow.wasm")

# GENESIS is the world: three agents with scrip, bob's and carol's thinking
# budgets, and the market's disk for the 3.4 MB escrow module.
GENESIS = {"principals": [
    {"id": "alice", "balance": 1000, "quotas": {"disk": 16777216}},
    {"id": "bob", "balance": 1000, "quotas": {"llm_budget": 1000}},
    {"id": "carol", "balance": 1000, "quotas": {"llm_budget": 1000}},
    {"id": "market", "balance": 0, "quotas": {"disk": 16777216}},
]}

Log = Callable[[str, str, Result], None]


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class Market:
    """The escrow's operator: deploys examples/rights-market's escrow as
    ``escrow/market``, acting as principal ``market``, and grants it
    standing."""

    ID = "escrow/market"

    def __init__(self, c: Client, log: Log) -> None:
        self.c, self.log = c, log

    def open(self) -> None:
        r = self.c.put_artifact(self.ID, _read(ESCROW), type="executable", metadata={"principal": "market"})
        self.log("market", "deploys the escrow", r.check())
        self.log("market", "grants it standing", self.c.grant_standing(self.ID).check())


class Publisher:
    """alice: writes a report a round under her pay-per-read contract and
    reprices it from the paid reads in her audit trail."""

    def __init__(self, c: Client, log: Log, price: int = 4) -> None:
        self.c, self.log, self.price = c, log, price
        self.contract = "alice/pay"
        self.revenue = 0
        self.prices: List[int] = []
        self.sales: List[int] = []
        self._after = 0  # the audit trail read so far

    def open(self) -> None:
        r = self.c.put_artifact(self.contract, _read(PAY_PER_READ), type="contract",
                                metadata={"price": str(self.price), "payee": "alice"})
        self.log("alice", f"deploys {self.contract} at price {self.price}", r.check())
        self._after = r.event

    def publish(self, n: int) -> str:
        report = f"alice/report/{n}"
        r = self.c.write(report, f"report {n}: the market is up {n}%", type="text", contract=self.contract)
        self.log("alice", f"publishes {report} at {self.price}", r.check())
        self.prices.append(self.price)
        return report

    def reprice(self, report: str, readers: int) -> None:
        """Counts the paid reads of ``report`` since the last look (events
        alice is payee of) and moves the price: all bought, up one; none,
        down one; else it stays."""
        paid = 0
        for ev in self.c.iter_events(self._after, kind="read", target=report):
            self._after = max(self._after, ev.seq)
            for ch in ev.charges:
                if ch.payee == "alice":
                    paid += 1
                    self.revenue += ch.amount
        self.sales.append(paid)
        new = self.price + 1 if paid == readers else self.price - 1 if paid == 0 else self.price
        if new != self.price and new > 0:
            r = self.c.edit(self.contract, metadata={"price": str(new)})
            self.log("alice", f"sold {paid}/{readers}: price {self.price} -> {new}", r.check())
            self.price = new


class Reader:
    """A reader that buys a report when its price is at most ``worth``."""

    def __init__(self, name: str, c: Client, log: Log, worth: int) -> None:
        self.name, self.c, self.log, self.worth = name, c, log, worth
        self.bought: List[str] = []

    def buy(self, report: str) -> bool:
        r = self.c.read(report, max_cost=self.worth)
        if r.ok:
            self.bought.append(report)
            self.log(self.name, f"reads {report} for {r.charges[0].amount if r.charges else 0}", r)
            return True
        if r.error_code != "COST_LIMIT_EXCEEDED":
            r.check()
        self.log(self.name, f"passes on {report}: worth {self.worth} to me", r)
        return False


class Thinker:
    """bob's thinking: ``cost`` of his ``llm_budget`` a round; when the
    budget is out he buys the cheapest right to ``llm_budget`` listed with
    the escrow, redeems it into his quota, and thinks."""

    def __init__(self, name: str, c: Client, log: Log, cost: int = 300) -> None:
        self.name, self.c, self.log, self.cost = name, c, log, cost
        self.thoughts = 0
        self.purchases: List[Dict[str, object]] = []

    def think(self) -> None:
        r = self.c.consume_quota("llm_budget", self.cost)
        if not r.ok and r.error_code == "QUOTA_EXCEEDED" and not r.retriable:
            self.log(self.name, f"thinks: out of llm_budget ({r.available} left), to the market", r)
            if self.buy_capacity():
                r = self.c.consume_quota("llm_budget", self.cost)
        if r.ok:
            self.thoughts += 1
        self.log(self.name, f"thinks ({self.cost} µ$ of llm_budget)", r)

    def listings(self) -> List[Dict[str, object]]:
        """Every open listing of the escrow, read through the client."""
        out = []
        for a in self.c.iter_artifacts("market/listing/"):
            r = self.c.read(a.id, max_cost=0)
            if r.ok and r.text:
                out.append(json.loads(r.text))
        return out

    def buy_capacity(self) -> bool:
        offers = sorted((x for x in self.listings() if x["resource"] == "llm_budget"
                         and int(x["amount"]) >= self.cost), key=lambda x: int(x["price"]))
        if not offers:
            self.log(self.name, "finds no capacity for sale", Result(ok=False, error_code="NOT_FOUND"))
            return False
        o = offers[0]
        price = int(o["price"])
        # max_cost covers what the invocation pays as bob: the price.
        r = self.c.invoke(Market.ID, "buy", {"right": o["right"], "price": price}, max_cost=price)
        self.log(self.name, f"buys {o['right']} ({o['amount']} llm_budget) from {o['seller']} for {price}", r)
        if not r.ok:
            return False
        self.log(self.name, f"redeems {o['right']}", self.c.redeem_right(str(o["right"])).check())
        self.purchases.append(o)
        return True


class Seller:
    """carol: keeps one right to ``amount`` of her spare ``llm_budget``
    listed with the escrow at ``price`` scrip, while her quota lasts."""

    def __init__(self, name: str, c: Client, log: Log, amount: int = 300, price: int = 20) -> None:
        self.name, self.c, self.log, self.amount, self.price = name, c, log, amount, price
        self.listed: List[str] = []

    def restock(self, n: int) -> None:
        open_ = {a.id for a in self.c.iter_artifacts("market/listing/")}
        if any(f"market/listing/{r}" in open_ for r in self.listed):
            return  # her last listing is still open
        right = f"{self.name}/budget-{n}"
        r = self.c.mint_right(right, "llm_budget", self.amount)
        if not r.ok:
            self.log(self.name, f"cannot mint more: {r.error_code}", r)
            return
        self.log(self.name, f"mints {right} ({self.amount} llm_budget)", r)
        r = self.c.invoke(Market.ID, "sell", {"right": right, "price": self.price})
        self.log(self.name, f"lists {right} for {self.price}", r.check())
        self.listed.append(right)


class Accountant:
    """Follows alice's audit trail live (GET /v1/events?follow=1) in a
    thread and adds up what she was paid."""

    def __init__(self, c: Client, after: int) -> None:
        self.stream = c.follow(after)
        self.income = 0
        self.seen: List[Event] = []
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        for ev in self.stream:
            self.seen.append(ev)
            self.income += sum(ch.amount for ch in ev.charges if ch.payee == "alice")

    def wait_for(self, seq: int, timeout: float = 30.0) -> None:
        """Waits until the follow has passed event seq (a liveness bound:
        the follow is stuck beyond it)."""
        import time

        deadline = time.monotonic() + timeout
        while self.stream.last_id < seq:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the accountant's follow stopped at {self.stream.last_id}, before {seq}")
            time.sleep(0.02)

    def stop(self) -> None:
        self.stream.close()
        self._t.join(10)


@dataclass
class Report:
    """What an economy run did."""

    prices: List[int]
    sales: List[int]
    revenue: int
    income_followed: int
    thoughts: int
    purchases: List[str]
    listed: List[str]
    balances: Dict[str, int]
    transcript: List[str] = field(default_factory=list)
    results: List[Result] = field(default_factory=list)


def run(url: str, tokens: Dict[str, str], admin_token: str, rounds: int = 5,
        echo: Optional[Callable[[str], None]] = None) -> Report:
    """Plays ``rounds`` rounds on the server at url, with the principals'
    tokens of GENESIS."""
    transcript: List[str] = []
    results: List[Result] = []

    def log(agent: str, what: str, r: Result) -> None:
        line = f"{agent:7} {what:58} {r.code}"
        transcript.append(line)
        if r.request_id:
            results.append(r)
        if echo:
            echo(line)

    cs = {name: Client(url, tok) for name, tok in tokens.items()}
    admin = Client(url, admin_token)
    try:
        Market(cs["market"], log).open()
        alice = Publisher(cs["alice"], log)
        alice.open()
        accountant = Accountant(cs["alice"], alice._after)
        readers = [Reader("bob", cs["bob"], log, worth=6), Reader("carol", cs["carol"], log, worth=9)]
        bob = Thinker("bob", cs["bob"], log)
        carol = Seller("carol", cs["carol"], log)
        for n in range(1, rounds + 1):
            carol.restock(n)
            report = alice.publish(n)
            for rd in readers:
                rd.buy(report)
            bob.think()
            alice.reprice(report, len(readers))
        accountant.wait_for(max(e.seq for e in cs["alice"].iter_events(0)))
        accountant.stop()
        balances = {p.id: p.balance for p in admin.iter_principals() if p.id in tokens}
        return Report(prices=alice.prices, sales=alice.sales, revenue=alice.revenue,
                      income_followed=accountant.income, thoughts=bob.thoughts,
                      purchases=[str(o["right"]) for o in bob.purchases], listed=carol.listed, balances=balances,
                      transcript=transcript, results=results)
    finally:
        for c in cs.values():
            c.close()
        admin.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    with LocalServer(GENESIS) as srv:
        rep = run(srv.url, srv.tokens, srv.admin_token, a.rounds, echo=print)
    print(f"\nprices {rep.prices}, sales {rep.sales}: alice earned {rep.revenue} "
          f"(the accountant's follow saw {rep.income_followed})")
    print(f"bob thought {rep.thoughts} times and bought {rep.purchases}; carol listed {rep.listed}")
    print("balances", rep.balances, "sum", sum(rep.balances.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
