"""Fault injection: expired and dropped streams, an unavailable API, slow or failing subresources, bad objects."""

from __future__ import annotations

import random
from typing import Any

from exporter.simulator.clock import rfc3339
from exporter.simulator.history import ObjectStore
from exporter.simulator.objects import SIMULATED
from exporter.simulator.streams import StreamEnd

MALFORMED_NAMESPACE = "sim-malformed"


class Faults:
    """Switches the HTTP layer consults on every request, and one-shot faults applied to the store."""

    def __init__(self, store: ObjectStore, *, seed: int = 0) -> None:
        self._store = store
        self._rng = random.Random(f"faults-{seed}")
        self._unavailable = False
        self._malformed = 0
        self.guestosinfo_delay = 0.0
        self.guestosinfo_fail_rate = 0.0

    @property
    def unavailable(self) -> bool:
        return self._unavailable

    def set_unavailable(self, flag: bool) -> None:
        """While True every request is answered 503 ServiceUnavailable."""
        self._unavailable = flag

    def expire_watches(self) -> None:
        """Compact history, then send every open watch an ERROR 410 event and close it."""
        self._store.compact()
        self._store.end_streams(StreamEnd.EXPIRED, watches_only=True)

    def drop_streams(self) -> None:
        """Abort every open watch and log stream connection without a final event or chunk."""
        self._store.end_streams(StreamEnd.DROPPED)

    def compact(self) -> None:
        """Forget history: any resourceVersion older than the current one is Expired."""
        self._store.compact()

    def guestosinfo_fails(self) -> bool:
        """Draw whether this guestosinfo request fails, at ``guestosinfo_fail_rate``."""
        return self.guestosinfo_fail_rate > 0 and self._rng.random() < self.guestosinfo_fail_rate

    def malformed_objects(self, n: int, *, huge_size: int = 64 * 1024) -> list[dict[str, Any]]:
        """Inject ``n`` VMIs with malformed bodies (and a snapshot with unknown indications for some).

        Bodies cycle through: no status; conditions as a string; wrong types; huge strings of
        ``huge_size`` characters; broken conditions and unknown values; control characters.
        """
        injected: list[dict[str, Any]] = []
        now = rfc3339(self._store.now())
        for _ in range(n):
            k = self._malformed
            self._malformed += 1
            name = f"malformed-{k}"
            meta = {"name": name, "namespace": MALFORMED_NAMESPACE, "annotations": {SIMULATED: "true"}}
            variant = k % 6
            body: dict[str, Any] = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                                    "metadata": meta, "spec": {}}
            if variant == 1:
                body["status"] = {"phase": "Running", "conditions": "AgentConnected=True"}
            elif variant == 2:
                body["status"] = {"phase": 3, "interfaces": {"ipAddress": 7}, "nodeName": ["a", "b"],
                                  "guestOSInfo": "mswindows", "fsFreezeStatus": True}
            elif variant == 3:
                huge = "x" * huge_size
                meta["labels"] = {"kubevirt.io/nodeName": "sim-node-01"}
                meta["annotations"] = {SIMULATED: "true", "huge": huge}
                body["status"] = {"phase": "Running", "nodeName": huge, "reason": huge,
                                  "guestOSInfo": {"id": "mswindows", "prettyName": huge},
                                  "conditions": [{"type": "AgentConnected", "status": "True", "message": huge}]}
            elif variant == 4:
                body["status"] = {"phase": "Exploding", "fsFreezeStatus": "half-frozen",
                                  "conditions": [None, 1, "x", {"type": None}, {"status": "Maybe",
                                                 "type": "AgentConnected"}]}
                injected.append(self._store.upsert("virtualmachinesnapshots", {
                    "metadata": {"name": f"{name}-snap", "namespace": MALFORMED_NAMESPACE,
                                 "annotations": {SIMULATED: "true"}},
                    "spec": {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": name},
                             "failureDeadline": "soon"},
                    "status": {"phase": "Succeeded", "creationTime": "yesterday",
                               "indications": ["GuestAgent", "Online", "QuantumEntangled", 42],
                               "sourceIndications": "none", "error": "not an object"},
                }))
            elif variant == 5:
                body["status"] = {"phase": "Running", "nodeName": "node\x00\x01\x1b[31m",
                                  "guestOSInfo": {"id": "mswindows", "prettyName": "\u202ewodniW\ufffd"},
                                  "interfaces": [{"ipAddress": "not-an-ip", "ipAddresses": None}],
                                  "conditions": [{"type": "AgentConnected", "status": "True",
                                                  "lastProbeTime": now}]}
            injected.append(self._store.upsert("virtualmachineinstances", body))
        return injected
