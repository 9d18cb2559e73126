"""How the threads that carry events ask the OS to schedule them.

A listener hands each event from thread to thread (the event loop that received it wakes a
pool thread; a pool thread's commit wakes the pool's driver). The waker wakes the other while
it still holds Python's GIL. Under Linux's default policy the woken thread, put on the waker's
CPU, preempts it at once, finds the GIL taken, sleeps again, and the two ping-pong a few times
before either gets on: measured on issue 15's benchmark, 1.85 wake-ups of a pool thread per
event instead of 1, and a quarter of the listener's CPU in the kernel's task switching.

``SCHED_BATCH`` is the same fair policy (same share of the CPU, same nice value) except that
a thread under it, when woken, does not preempt the running one: it waits for the waker to
block (the event loop goes back to ``epoll`` microseconds later) or runs on another CPU. No
privilege is needed to ask for it. A process started from such a thread (a handler that runs a
command) inherits the policy. Set ``OMSBRIDGE_THREAD_SCHEDULING=normal`` to keep the default
policy.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

__all__ = ["batch_scheduled"]

logger = logging.getLogger(__name__)

_SETTING = "OMSBRIDGE_THREAD_SCHEDULING"


@contextlib.contextmanager
def batch_scheduled() -> Iterator[bool]:
    """Run the calling thread under ``SCHED_BATCH`` for the block (see the module doc), then
    give it its previous policy back. Yields whether the policy is in force: False where the
    OS has no such policy or refuses it, or when ``OMSBRIDGE_THREAD_SCHEDULING=normal``."""
    if os.environ.get(_SETTING, "").strip().lower() in ("normal", "off", "0"):
        yield False
        return
    batch = getattr(os, "SCHED_BATCH", None)
    if batch is None or not hasattr(os, "sched_setscheduler"):
        yield False
        return
    try:
        # pid 0 is the calling thread, not the process (sched_setscheduler(2)).
        previous = os.sched_getscheduler(0)
        priority = os.sched_getparam(0).sched_priority
        if previous != batch:
            os.sched_setscheduler(0, batch, os.sched_param(0))
    except OSError as exc:
        logger.debug("SCHED_BATCH refused (%s); the thread keeps its policy", exc)
        yield False
        return
    try:
        yield True
    finally:
        if previous != batch:
            try:
                os.sched_setscheduler(0, previous, os.sched_param(priority))
            except OSError:
                logger.debug("could not give the thread its scheduling policy back")
