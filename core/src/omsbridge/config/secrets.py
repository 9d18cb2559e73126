"""Secrets in config: written as references, resolved at load time, never shown.

In TOML a secret is ``{ env = "VAR" }`` or ``{ file = "path" }`` (relative to the config file).
A literal value is refused, so secrets never sit in the config file itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omsbridge.config._files import read_small_file

__all__ = ["MAX_SECRET_BYTES", "Secret", "resolve_secret"]

MAX_SECRET_BYTES = 64 * 1024
"""A secret file is a password, token or PEM key: a few kilobytes at most."""


class Secret:
    """A secret value that shows only where it came from in every repr, str and log line."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str = "literal") -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        """The secret itself; call it only where the value is sent to its service."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret(<{self.source}>)"

    def __str__(self) -> str:
        return "********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")


def resolve_secret(value: Any, base_dir: Path) -> Secret:
    """Resolve a ``{env = ...}`` or ``{file = ...}`` reference; ValueError says what is wrong."""
    if isinstance(value, Secret):
        return value
    if not isinstance(value, Mapping) or len(value) != 1 or not {"env", "file"} & set(value):
        kind = "a literal string" if isinstance(value, str) else type(value).__name__
        raise ValueError(
            f'must be a secret reference {{ env = "VAR" }} or {{ file = "path" }}, not {kind}'
        )
    if "env" in value:
        name = value["env"]
        if not isinstance(name, str) or not name:
            raise ValueError("env must name an environment variable")
        found = os.environ.get(name)
        if not found:
            raise ValueError(f"environment variable {name} is not set")
        return Secret(found, f"env:{name}")
    path = value["file"]
    if not isinstance(path, str) or not path:
        raise ValueError("file must be a path")
    full = (base_dir / path).expanduser()
    raw = read_small_file(full, MAX_SECRET_BYTES, "secret file")
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"secret file {full} is not UTF-8 text") from None
    if not text:
        raise ValueError(f"secret file {full} is empty")
    return Secret(text, f"file:{path}")
