"""Fault injection: latency, 500/503 errors, timeouts, row locks — scoped by path and count.

A fault is a rule ``{"kind": ..., "path": glob, "method": ..., "count": n, "rate": p, ...}``.
For every request (control endpoints excepted) the injector returns the faults that fire;
``count`` faults disappear once used up, ``rate`` faults fire with that probability from a
seeded RNG, so a run is reproducible.

Kinds:

``latency``  add ``latency_ms`` before answering.
``error``    answer ``status`` (500 or 503) with Salesforce's error body, without processing.
``timeout``  hold the answer ``hold_seconds``; with ``after_commit`` the request is processed
             and committed first (the client times out but the change happened), otherwise
             nothing is processed and the held request finally answers 503.
``lock``     the request's first write fails with ``UNABLE_TO_LOCK_ROW``.
``gateway``  the payment gateway fails: ``ensure-refunds-async`` / ``ensure-funds-async``
             answer as usual (a background operation id) but move no money; the failure shows
             only as a ``/event/ProcessExceptionEvent``, as Salesforce reports asynchronous
             payment failures.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import asdict, dataclass
from typing import Any

KINDS = ("latency", "error", "timeout", "lock", "gateway")


@dataclass
class Fault:
    """One fault rule (see the module docstring)."""

    kind: str
    path: str = "*"
    method: str | None = None
    count: int | None = None
    rate: float = 1.0
    status: int = 503
    latency_ms: int = 0
    hold_seconds: float = 0.0
    after_commit: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if self.kind == "error" and self.status not in (500, 502, 503):
            raise ValueError("error faults answer 500, 502 or 503")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")

    def matches(self, method: str, path: str) -> bool:
        """Whether this rule applies to a request (path glob, optional method)."""
        if self.method and self.method.upper() != method.upper():
            return False
        return fnmatch.fnmatchcase(path, self.path)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        """Build a fault from its JSON form (unknown keys are an error)."""
        allowed = set(cls.__dataclass_fields__)
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault keys: {', '.join(sorted(unknown))}")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        """The JSON form of this fault."""
        return asdict(self)


class FaultInjector:
    """Holds the active fault rules and decides which fire for a request."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.rng = random.Random(seed)

    def add(self, fault: Fault) -> None:
        """Activate a fault rule."""
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Remove every fault rule."""
        with self._lock:
            self._faults.clear()

    def reseed(self, seed: int) -> None:
        """Restart the RNG that decides ``rate`` faults."""
        with self._lock:
            self.rng = random.Random(seed)

    def list(self) -> list[Fault]:
        """The active rules."""
        with self._lock:
            return list(self._faults)

    def fire(self, method: str, path: str) -> list[Fault]:
        """The faults that apply to this request (consumes counts)."""
        fired: list[Fault] = []
        with self._lock:
            for fault in list(self._faults):
                if not fault.matches(method, path):
                    continue
                if fault.rate < 1.0 and self.rng.random() >= fault.rate:
                    continue
                fired.append(fault)
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
        return fired


def error_body(status: int) -> list[dict[str, str]]:
    """Salesforce's body for an injected 5xx."""
    if status == 503:
        return [
            {
                "errorCode": "SERVER_UNAVAILABLE",
                "message": "Server temporarily unavailable. Please try again later.",
            }
        ]
    return [
        {
            "errorCode": "UNKNOWN_EXCEPTION",
            "message": "An unexpected error occurred. Please include this ErrorId if you "
            "contact support: 1048576001-12345 (-1465237521)",
        }
    ]
