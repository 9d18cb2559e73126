"""The scenario catalogue: every scenario's stable id, what it proves, and what it needs.

A scenario is a test function in :mod:`omsbridge_contract.scenarios` decorated with
:func:`scenario`. Its id is the function name (``test_sale_cash``); ids never change meaning, so
a third party can deselect or xfail one by id. What it needs is data:

* ``requires``: backend capabilities (:class:`omsbridge.Capability`); a backend that does not
  declare one of them gets a skip naming it;
* ``harness``: harness methods beyond the required ``settings`` and ``order_count``
  (``seed_online_order``, ``make_fulfillment_order``, ``inject_fault``);
* ``fault``: the :class:`~omsbridge_contract.harness.Fault` the harness must be able to inject.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import attrs
import pytest

from omsbridge.spi import Capability
from omsbridge_contract.harness import Fault

__all__ = [
    "SCENARIOS",
    "SCENARIO_MODULES",
    "ScenarioInfo",
    "catalogue_markdown",
    "load_catalogue",
    "scenario",
]

SCENARIO_MODULES = (
    "test_backend.py",
    "test_posting.py",
    "test_returns.py",
    "test_cancel.py",
    "test_search.py",
    "test_fulfillment.py",
    "test_read_model.py",
    "test_faults.py",
    "test_recordings.py",
)
"""The scenario modules (in ``omsbridge_contract/scenarios/``), in the order they run."""

F = TypeVar("F", bound=Callable[..., Any])


@attrs.frozen
class ScenarioInfo:
    """One scenario of the catalogue."""

    id: str
    area: str
    summary: str
    requires: tuple[Capability, ...] = ()
    harness: tuple[str, ...] = ()
    fault: Fault | None = None
    undeclared: bool = False
    module: str = ""
    line: int = 0

    def needs(self) -> str:
        """What the scenario needs, as one line for the docs."""
        parts = [f"`{c.value}`" for c in self.requires]
        parts += [f"harness `{h}()`" for h in self.harness]
        if self.fault is not None:
            parts.append(f"fault `{self.fault.value}`")
        if self.undeclared:
            parts.append("a capability left undeclared")
        return ", ".join(parts) or "nothing"


SCENARIOS: dict[str, ScenarioInfo] = {}
"""Every scenario by id (filled when the scenario modules are imported)."""


def scenario(
    summary: str,
    *,
    area: str,
    requires: Iterable[Capability] = (),
    harness: Iterable[str] = (),
    fault: Fault | None = None,
    undeclared: bool = False,
) -> Callable[[F], F]:
    """Declare a test function a contract scenario: its one-line summary and what it needs
    (``undeclared``: a backend that declares every capability has nothing for it to check)."""

    def mark(function: F) -> F:
        info = ScenarioInfo(
            id=function.__name__,
            area=area,
            summary=summary,
            requires=tuple(requires),
            harness=tuple(harness),
            fault=fault,
            undeclared=undeclared,
            module=function.__module__.rsplit(".", 1)[-1] + ".py",
            line=function.__code__.co_firstlineno,
        )
        if info.id in SCENARIOS and SCENARIOS[info.id].summary != summary:
            raise ValueError(f"scenario id {info.id!r} is defined twice")
        SCENARIOS[info.id] = info
        function.__doc__ = function.__doc__ or summary
        function = pytest.mark.oms_contract(function)
        return pytest.mark.oms_scenario(info)(function)  # type: ignore[no-any-return]

    return mark


def load_catalogue() -> dict[str, ScenarioInfo]:
    """Import every scenario module and return the complete catalogue."""
    for name in SCENARIO_MODULES:
        importlib.import_module(f"omsbridge_contract.scenarios.{name.removesuffix('.py')}")
    return SCENARIOS


def catalogue_markdown() -> str:
    """The catalogue as the Markdown table of ``docs/contract-suite.md``
    (``python -m omsbridge_contract`` prints it)."""
    rows = [
        "| id | area | what it proves | needs |",
        "|---|---|---|---|",
    ]
    order = {name: i for i, name in enumerate(SCENARIO_MODULES)}
    infos = sorted(load_catalogue().values(), key=lambda i: (order.get(i.module, 99), i.line))
    for info in infos:
        rows.append(f"| `{info.id}` | {info.area} | {info.summary} | {info.needs()} |")
    return "\n".join(rows) + "\n"
