"""``omsbridge sandbox NAME``: local emulators that plugins register."""

from __future__ import annotations

import click


class _SandboxGroup(click.Group):
    """A group whose commands plugins add on first use, so ``omsbridge --help`` imports no emulator."""

    _loaded = False

    def _load_plugins(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        from omsbridge.plugins import call_registration, get_plugin_manager

        call_registration(
            get_plugin_manager(), "omsbridge_register_sandboxes", register=self.add_command
        )

    def reload_plugins(self) -> None:
        """Ask the plugins for their emulators again on next use (the plugin manager changed)."""
        self._loaded = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The emulators plugins offer (loads them on first call)."""
        self._load_plugins()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """One emulator by name (loads the plugins' emulators on first call)."""
        self._load_plugins()
        return super().get_command(ctx, cmd_name)


@click.group(cls=_SandboxGroup)
def sandbox() -> None:
    """Run a local emulator of an order-management system (plugins add them).

    \b
    Example:
      omsbridge sandbox salesforce --port 8765 --seed demo
    """
