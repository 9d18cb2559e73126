"""The one omsbridge hook the contract suite adds: plugins hand it their test harnesses.

The suite adds this module to omsbridge's plugin manager (the one that loads the ``omsbridge``
entry points) when a contract run starts. A backend plugin implements the hook in the same
module that registers its backend, marked optional so that it loads cleanly where the contract
suite is not installed::

    from omsbridge import hookimpl

    @hookimpl(optionalhook=True)
    def omsbridge_contract_harnesses(register):
        from omsbridge_mybackend.contract_harness import MyHarness  # imported only by the suite
        register(MyHarness)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from omsbridge_contract.harness import Harness

hookspec = pluggy.HookspecMarker("omsbridge")


@hookspec
def omsbridge_contract_harnesses(register: Callable[[type[Harness]], None]) -> None:
    """Register the contract-suite harnesses this plugin provides.

    Call ``register(HarnessClass)`` once per backend. ``HarnessClass`` is a subclass of
    :class:`omsbridge_contract.Harness` whose ``backend`` attribute names the backend it drives
    (the name ``pytest --oms-backend NAME`` selects). Each plugin's registration runs on its own:
    one that raises is reported with a warning naming the plugin and the others still register.

    :param register: callback taking one harness class.

    .. versionadded:: 0.1
    """
