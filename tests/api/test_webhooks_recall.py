"""A correction reaches the institutions that pulled the old version as a `recall` webhook:
one delivery per grant (two grants recalled by one supersession share its log), only to
the grant's institution."""

from __future__ import annotations

import time

from _api_server import LiveServer
from _trace_helpers import TraceHistory
from test_webhooks import Receiver, _wait, hooked

from api.client import DataSafeClient

__all__ = ["hooked"]


def test_recall_is_delivered_to_each_institution_that_pulled(
    hooked: tuple[LiveServer, TraceHistory],
) -> None:
    server, h = hooked
    w = h.world
    with (
        Receiver(fail=0) as one,
        Receiver(fail=0) as two,
        DataSafeClient(server.url, w.bank.key) as bank,
        DataSafeClient(server.url, w.bank2.key) as bank2,
    ):
        hooks = []
        for client, receiver in ((bank, one), (bank2, two)):
            created = client.post("/v1/webhooks", {"url": receiver.url, "kinds": ["recall"]})
            receiver.secret = created["secret"]
            hooks.append(created["id"])
        # a1 was pulled under "loan" (bank, twice) and "kyc" (bank2, once): both are recalled.
        w.transact(
            w.issuer,
            "supersedeAsset",
            h.assets["a1"].asset_id,
            b"\x51" * 32,
            b"\1" * 32,
            b"\2" * 32,
        )
        h.index()
        _wait(lambda: len(one.processed) == 1 and len(two.processed) == 1)
        time.sleep(0.5)  # nothing else may arrive
        assert len(one.requests) == len(two.requests) == 1
        mine, theirs = one.processed[0], two.processed[0]
        assert mine["type"] == theirs["type"] == "grant.recall"
        assert (mine["data"]["grant_id"], mine["data"]["use"]) == (h.grants["loan"], 2)
        assert (theirs["data"]["grant_id"], theirs["data"]["use"]) == (h.grants["kyc"], 1)
        assert mine["data"]["tx_hash"] == theirs["data"]["tx_hash"]  # one supersession
        log = bank.get(f"/v1/webhooks/{hooks[0]}/deliveries")
        assert [e["event_key"] for e in log] == [f"recall:{h.grants['loan']}"]
