"""pytest hooks the contract plugin adds (implement them in a ``conftest.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import pluggy


@pytest.hookspec(firstresult=True)
def pytest_omsbridge_plugin_manager(config: pytest.Config) -> pluggy.PluginManager | None:
    """Return the omsbridge plugin manager whose backends and harnesses the suite uses.

    The default is :func:`omsbridge.plugins.get_plugin_manager`: every plugin installed through
    the ``omsbridge`` entry-point group. Implement this in a ``conftest.py`` to test a backend
    that is not installed, e.g. ``pm = new_plugin_manager(); pm.register(my_plugin)``.
    Stops at the first non-None result.

    :param config: the pytest config.

    .. versionadded:: 0.1
    """
