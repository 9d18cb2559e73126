"""Run the demo: start local emulators, write the bundled config for them, play a store day."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from omsbridge.bridge import Bridge
from omsbridge.demo.store_day import store_day
from omsbridge.errors import OMSBridgeError
from omsbridge.local import LocalServer, local_servers

__all__ = ["DEMO_MERCHANTS", "DemoReport", "StepOutcome", "run_demo"]

DEMO_MERCHANTS: tuple[tuple[str, str], ...] = (("ACME", "pos-spi"), ("SHOPNOW", "salesforce"))
"""The bundled config's merchants: (merchant id, backend)."""


@attrs.define
class StepOutcome:
    """What one demo step did for one merchant."""

    merchant_id: str
    backend: str
    step: str
    status: str  # "ok", "failed" or "skipped"
    seconds: float = 0.0
    details: dict[str, Any] = attrs.field(factory=dict)
    error: str | None = None


@attrs.define
class DemoReport:
    """Everything the demo did; ``ok`` is False if any step failed."""

    config_path: str
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
    wanted: tuple[tuple[str, str], ...], report: DemoReport
) -> Iterator[dict[str, LocalServer]]:
    available = local_servers()
    running: dict[str, LocalServer] = {}
    with ExitStack() as stack:
        for merchant_id, backend in wanted:
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


def run_demo(
    *,
    workdir: Path | None = None,
    merchants: tuple[tuple[str, str], ...] | None = None,
    on_step: Callable[[StepOutcome], None] | None = None,
) -> DemoReport:
    """Play the store day for every demo merchant whose backend has a local server."""
    merchants = merchants if merchants is not None else DEMO_MERCHANTS
    workdir = workdir or Path(tempfile.mkdtemp(prefix="omsbridge-demo-"))
    config_path = workdir / "omsbridge.toml"
    report = DemoReport(str(config_path))
    stamp = datetime.now(UTC).strftime("%H%M%S")
    with _started(merchants, report) as running:
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
                for step in store_day(f"{merchant_id}-{stamp}"):
                    outcome = StepOutcome(merchant_id, server.backend, step.name, "ok")
                    if step.needs not in merchant.backend.capabilities:
                        outcome.status = "skipped"
                        outcome.error = f"backend {server.backend} does not offer {step.needs}"
                    else:
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
                    report.outcomes.append(outcome)
                    if on_step:
                        on_step(outcome)
    return report
