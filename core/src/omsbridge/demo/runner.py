"""Run the demo: start every local emulator plugins offer, write a config for them, play the day.

The merchants are the local servers the ``omsbridge_register_local_servers`` hook offers, one
merchant per backend (:func:`omsbridge.local.demo_merchant_id`). Each plays the POS store day
and, when its server has an OMS side, the omnichannel day. The work directory (config and
store) is a temporary one, removed at the end, unless the caller names one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from omsbridge.bridge import Bridge
from omsbridge.demo.store_day import Step, store_day
from omsbridge.errors import OMSBridgeError
from omsbridge.local import LocalServer, demo_merchant_id, local_servers

__all__ = ["DemoReport", "StepOutcome", "run_demo"]


@attrs.define
class StepOutcome:
    """What one demo step did for one merchant."""

    merchant_id: str
    backend: str
    step: str
    status: str  # "ok", "failed" or "skipped"
    seconds: float = 0.0
    api_calls: int | None = None
    """API calls the step spent, as the server counts them (None: the server does not count)."""
    details: dict[str, Any] = attrs.field(factory=dict)
    error: str | None = None


@attrs.define
class DemoReport:
    """Everything the demo did; ``ok`` is False if any step failed."""

    config_path: str
    kept: bool = False
    """Whether the work directory (config and store) is kept after the run."""
    outcomes: list[StepOutcome] = attrs.field(factory=list)
    notes: list[str] = attrs.field(factory=list)

    @property
    def ok(self) -> bool:
        """True when no step failed."""
        return all(o.status != "failed" for o in self.outcomes)


def _toml_key(key: str) -> str:
    """A bare key where TOML allows one, else a quoted one (``"Wrong Item"``)."""
    if key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key):
        return key
    return _toml_value(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        pairs = (f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + ", ".join(pairs) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def write_config(path: Path, merchants: Mapping[str, LocalServer]) -> None:
    """Write the demo config: the store next to it, one merchant per running local server."""
    lines = [
        "# omsbridge demo config, written by `omsbridge demo`",
        "[store]",
        'path = "demo.db"',
        "",
    ]
    for merchant_id, server in merchants.items():
        lines += [f"[merchants.{merchant_id}]", f'backend = "{server.backend}"',
                  'locale = "en_US"', 'region = "US"', 'currency = "USD"', "",
                  f'[merchants.{merchant_id}."{server.backend}"]']  # fmt: skip
        lines += [
            f"{_toml_key(key)} = {_toml_value(value)}" for key, value in server.settings.items()
        ]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


class _MissingResult(KeyError):
    """A step needs what an earlier, failed step would have produced."""

    def __str__(self) -> str:
        return str(self.args[0])


class _Results(dict[str, Any]):
    """Step results by key; a missing one means the step that makes it failed."""

    def __missing__(self, key: str) -> Any:
        raise _MissingResult(key)


@contextmanager
def _started(
    backends: Sequence[str] | None, report: DemoReport
) -> Iterator[dict[str, LocalServer]]:
    available = local_servers()
    running: dict[str, LocalServer] = {}
    with ExitStack() as stack:
        for backend in available if backends is None else backends:
            merchant_id = demo_merchant_id(backend)
            start = available.get(backend)
            if start is None:
                report.notes.append(
                    f"{merchant_id} skipped: no local server for backend {backend!r} is installed"
                )
                continue
            server = start()
            stack.callback(server.stop)
            running[merchant_id] = server
        yield running


@contextmanager
def _workdir(workdir: Path | None) -> Iterator[Path]:
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    temporary = Path(tempfile.mkdtemp(prefix="omsbridge-demo-"))
    try:
        yield temporary
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _play(
    step: Step,
    merchant_id: str,
    server: LocalServer,
    merchant: Any,
    state: dict[str, Any],
    meter: Callable[[], int] | None,
) -> StepOutcome:
    outcome = StepOutcome(merchant_id, server.backend, step.name, "ok")
    if step.needs not in merchant.backend.capabilities:
        outcome.status = "skipped"
        outcome.error = f"backend {server.backend} does not offer {step.needs}"
        return outcome
    before = meter() if meter else None
    started = time.perf_counter()
    try:
        outcome.details = step.run(merchant, state)
    except _MissingResult as exc:
        outcome.status = "skipped"
        outcome.error = f"needs the {exc} step, which failed"
    except (OMSBridgeError, AssertionError) as exc:
        outcome.status = "failed"
        outcome.error = f"{type(exc).__name__}: {exc}"
    outcome.seconds = time.perf_counter() - started
    if meter and before is not None:
        # The count includes the OMS side's own calls (web orders, routing).
        outcome.api_calls = meter() - before
    return outcome


def _meter(server: LocalServer) -> Callable[[], int] | None:
    """The server's API-call count, less what its own reads cost (measured: two reads in a
    row; a read Salesforce counts shows in every later read)."""
    read = server.api_calls
    if read is None:
        return None
    first = read()
    cost = read() - first
    reads = [2]

    def count() -> int:
        reads[0] += 1
        return read() - cost * reads[0]

    return count


def run_demo(
    *,
    workdir: Path | None = None,
    backends: Sequence[str] | None = None,
    on_step: Callable[[StepOutcome], None] | None = None,
) -> DemoReport:
    """Play the store day (and, with an OMS side, the omnichannel day) for every backend with a
    local server (or those named in ``backends``). Without ``workdir`` the config and store
    live in a temporary directory that is removed at the end."""
    from omsbridge.demo.omnichannel import omnichannel

    with _workdir(workdir) as where:
        config_path = where / "omsbridge.toml"
        report = DemoReport(str(config_path), kept=workdir is not None)
        stamp = datetime.now(UTC).strftime("%H%M%S")
        with _started(backends, report) as running:
            if not running:
                report.notes.append("no local servers available: install omsbridge-posspi")
                return report
            for server in running.values():
                os.environ.update(server.environment)
            write_config(config_path, running)
            with Bridge.from_config(config_path) as bridge:
                for merchant_id, server in running.items():
                    merchant = bridge.for_merchant(merchant_id)
                    state: dict[str, Any] = _Results()
                    steps = store_day(f"{merchant_id}-{stamp}")
                    if server.oms_side is not None:
                        steps += omnichannel(
                            f"{stamp}{len(report.outcomes)}", server.oms_side, bridge.store
                        )
                    else:
                        report.notes.append(
                            f"{merchant_id}: the {server.backend} local server has no OMS side; "
                            "omnichannel flows not played"
                        )
                    meter = _meter(server)
                    for step in steps:
                        outcome = _play(step, merchant_id, server, merchant, state, meter)
                        report.outcomes.append(outcome)
                        if on_step:
                            on_step(outcome)
    return report
