"""The listener threads' scheduling policy (omsbridge.threads): SCHED_BATCH where Linux offers
it, the previous policy given back after the block, the OS default kept on request or where
the policy is missing or refused, and the pool's threads under it while they run."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import pytest

from omsbridge.listen import EventDrivenPool, Listener, ListenerSettings
from omsbridge.model import EventBatch
from omsbridge.store.sqlite import SqliteStore
from omsbridge.threads import batch_scheduled

linux = pytest.mark.skipif(sys.platform != "linux", reason="SCHED_BATCH is Linux's")


@linux
def test_the_block_runs_under_sched_batch_and_the_policy_comes_back_after() -> None:
    before = os.sched_getscheduler(0)
    assert before != os.SCHED_BATCH
    with batch_scheduled() as applied:
        assert applied is True
        assert os.sched_getscheduler(0) == os.SCHED_BATCH
    assert os.sched_getscheduler(0) == before


@linux
def test_only_the_calling_thread_changes() -> None:
    seen: dict[str, int] = {}
    inside = threading.Event()
    leave = threading.Event()

    def batch_thread() -> None:
        with batch_scheduled():
            seen["inside"] = os.sched_getscheduler(0)
            inside.set()
            leave.wait(5)

    thread = threading.Thread(target=batch_thread)
    thread.start()
    assert inside.wait(5)
    try:
        assert seen["inside"] == os.SCHED_BATCH
        assert os.sched_getscheduler(0) != os.SCHED_BATCH  # this (the test's) thread
    finally:
        leave.set()
        thread.join(5)


@linux
@pytest.mark.parametrize("value", ["normal", "NORMAL", "off", "0"])
def test_the_setting_keeps_the_default_policy(monkeypatch: Any, value: str) -> None:
    monkeypatch.setenv("OMSBRIDGE_THREAD_SCHEDULING", value)
    with batch_scheduled() as applied:
        assert applied is False
        assert os.sched_getscheduler(0) != os.SCHED_BATCH


def test_an_os_without_the_policy_runs_the_block_as_is(monkeypatch: Any) -> None:
    monkeypatch.delattr(os, "SCHED_BATCH", raising=False)
    ran = []
    with batch_scheduled() as applied:
        ran.append(applied)
    assert ran == [False]


def test_a_refused_policy_runs_the_block_as_is(monkeypatch: Any) -> None:
    def refuse(*args: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "SCHED_BATCH", 3, raising=False)
    monkeypatch.setattr(os, "sched_getscheduler", lambda pid: 0, raising=False)
    monkeypatch.setattr(os, "sched_getparam", lambda pid: os.sched_param(0), raising=False)
    monkeypatch.setattr(os, "sched_setscheduler", refuse, raising=False)
    with batch_scheduled() as applied:
        assert applied is False


class _Source:
    """A feed that notes the scheduling policy of the thread that reads it."""

    merchant_id = "M1"

    def __init__(self) -> None:
        self.policies: list[int] = []

    def events(self, checkpoint: str | None, wait: float = 0.0) -> EventBatch:
        self.policies.append(os.sched_getscheduler(0))
        time.sleep(min(wait, 0.01))
        return EventBatch((), "cp")


@linux
def test_the_pool_reads_and_drives_under_sched_batch(tmp_path: Any) -> None:
    source = _Source()
    store = SqliteStore(tmp_path / "s.db")
    listener = Listener(source, store, settings=ListenerSettings(wait=0.01))  # type: ignore[arg-type]
    pool = EventDrivenPool([listener], workers=2)
    pool.start()
    try:
        deadline = time.monotonic() + 10
        while not source.policies:
            assert time.monotonic() < deadline, "the pool never read its feed"
            time.sleep(0.01)
        driver = pool._thread
        assert driver is not None and driver.native_id is not None
        assert os.sched_getscheduler(driver.native_id) == os.SCHED_BATCH
    finally:
        pool.stop()
        store.close()
    assert set(source.policies) == {os.SCHED_BATCH}
