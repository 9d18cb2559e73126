"""Config input that used to give tracebacks, hangs or silent nonsense (issue 11, item 8).

Each test failed before the fix: a UnicodeDecodeError or RecursionError traceback, a hang on a
FIFO or /dev/zero secret, "Allocated" read as nine one-letter statuses, 5 read as "5", and a
store path that passed ``config check`` and then failed inside sqlite.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs
import pytest
from fakes import MemoryBackend
from test_config import GOOD, write

from omsbridge import BackendRegistry
from omsbridge.config import Secret, load_config
from omsbridge.errors import ConfigError


def problems(path: Path, registry: BackendRegistry) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, registry)
    return [str(i) for i in info.value.issues]


def test_invalid_utf8_config_is_a_named_error(tmp_path, registry):
    path = tmp_path / "omsbridge.toml"
    path.write_bytes(b'[store]\npath = "\xff\xfe"\n')
    assert problems(path, registry) == [f"{path} is not UTF-8 text (byte 0xff at 16)"]


def test_binary_config_is_a_named_error(tmp_path, registry):
    path = tmp_path / "omsbridge.toml"
    path.write_bytes(bytes(range(256)))
    assert problems(path, registry)[0].startswith(f"{path} is not UTF-8 text")


def test_deeply_nested_toml_is_a_named_error(tmp_path, registry):
    path = tmp_path / "omsbridge.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    assert problems(path, registry) == [f"{path} nests arrays or tables too deeply"]


def test_a_directory_as_config_is_a_named_error(tmp_path, registry):
    assert problems(tmp_path, registry) == [f"cannot read {tmp_path}: a directory"]


def _secret_config(tmp_path: Path, target: str) -> Path:
    return write(tmp_path, GOOD.replace('{ env = "SHOPNOW_KEY" }', f'{{ file = "{target}" }}'))


def _in_thread(call: Any) -> list[Any]:
    """Run ``call`` in a thread and give it 10 s: a hang must fail the test, not stall CI."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(_catch(call)), daemon=True)
    thread.start()
    thread.join(10)
    assert out, "hung"
    return out


def _catch(call: Any) -> Any:
    try:
        return call()
    except ConfigError as exc:
        return [str(i) for i in exc.issues]


def test_a_fifo_secret_is_refused_not_waited_for(tmp_path, registry):
    os.mkfifo(tmp_path / "key.fifo")
    config = _secret_config(tmp_path, "key.fifo")
    (found,) = _in_thread(lambda: load_config(config, registry))
    assert found == [
        f"merchants.SHOPNOW.memory.api_key: cannot read secret file {tmp_path / 'key.fifo'}: "
        "not a regular file"
    ]


def test_dev_zero_secret_is_refused_not_read_forever(tmp_path, registry):
    config = _secret_config(tmp_path, "/dev/zero")
    (found,) = _in_thread(lambda: load_config(config, registry))
    assert found == [
        "merchants.SHOPNOW.memory.api_key: cannot read secret file /dev/zero: not a regular file"
    ]


def test_a_huge_secret_file_is_refused(tmp_path, registry):
    (tmp_path / "big.key").write_bytes(b"x" * (64 * 1024 + 1))
    config = _secret_config(tmp_path, "big.key")
    assert problems(config, registry) == [
        f"merchants.SHOPNOW.memory.api_key: cannot read secret file {tmp_path / 'big.key'}: "
        "larger than 65536 bytes"
    ]


@pytest.mark.parametrize(
    ("store", "expected"),
    [
        ('path = "."', "must be an SQLite database file, but {tmp} is a directory"),
        ('path = "/dev/null"', "must be an SQLite database file, but /dev/null is a device"),
        ('path = "file.txt/omsbridge.db"', "must be under a directory, but {tmp}/file.txt is a"),
        ("path = 5", "must be a file path, got a number (5)"),
    ],
)
def test_a_store_path_sqlite_cannot_use_is_refused_by_config_check(
    tmp_path, registry, store, expected
):
    (tmp_path / "file.txt").write_text("x")
    config = write(tmp_path, GOOD.replace('path = "state/omsbridge.db"', store))
    os.environ["SHOPNOW_KEY"] = "k"
    found = problems(config, registry)
    assert len(found) == 1 and found[0].startswith("store.path: " + expected.format(tmp=tmp_path))


# -- wrong types, refused generally by the settings converter ---------------------------------


def _merge(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType({"IN_STORE-DEFAULT": "In Store", **(value or {})})


@attrs.frozen
class TypedSettings:
    """Every shape a backend's settings take (the Salesforce config's, in small)."""

    name: str
    statuses_to_process: list[str] = attrs.field(factory=list)
    delivery_methods: Mapping[str, str] = attrs.field(factory=dict, converter=_merge)
    tags: tuple[str, ...] = ()
    timeout: float = 5.0
    retries: int | None = None
    verbose: bool = False
    key: Secret | None = None


class TypedBackend(MemoryBackend):
    name = "typed"
    config_class = TypedSettings  # type: ignore[assignment]


@pytest.fixture
def typed_registry() -> BackendRegistry:
    registry = BackendRegistry()
    registry.register(TypedBackend)
    return registry


def typed(tmp_path: Path, body: str) -> Path:
    return write(tmp_path, f'[merchants.M]\nbackend = "typed"\n[merchants.M.typed]\n{body}\n')


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            'name = "x"\nstatuses_to_process = "Allocated"',
            'statuses_to_process: expected an array of strings, got a string ("Allocated")',
        ),
        (
            'name = "x"\ndelivery_methods = { "IN_STORE-DEFAULT" = 5 }',
            "delivery_methods.IN_STORE-DEFAULT: expected a string, got a number (5)",
        ),
        (
            'name = "x"\ndelivery_methods = ["a"]',
            "delivery_methods: expected an object of strings, got an array",
        ),
        ("name = 5", "name: expected a string, got a number (5)"),
        ('name = "x"\ntags = "ab"', 'tags: expected an array of strings, got a string ("ab")'),
        ('name = "x"\ntimeout = "5"', 'timeout: expected a finite number, got a string ("5")'),
        ('name = "x"\ntimeout = true', "timeout: expected a finite number, got true"),
        ('name = "x"\nretries = 2.5', "retries: expected a whole number, got a number (2.5)"),
        ('name = "x"\nverbose = "yes"', 'verbose: expected true or false, got a string ("yes")'),
        ('name = "x"\nstatuses_to_process = [1]', "statuses_to_process[0]: expected a string"),
    ],
)
def test_wrong_types_are_refused_with_their_path(tmp_path, typed_registry, body, expected):
    found = problems(typed(tmp_path, body), typed_registry)
    assert len(found) == 1
    assert found[0].startswith("merchants.M.typed." + expected), found


def test_right_types_still_load(tmp_path, typed_registry):
    config = load_config(
        typed(
            tmp_path,
            'name = "x"\nstatuses_to_process = ["Allocated"]\ntimeout = 3\nretries = 2\n'
            'delivery_methods = { "ONLINE-DEFAULT" = "Ground" }\ntags = ["a"]',
        ),
        typed_registry,
    )
    settings = config.merchants["M"].settings
    assert settings.statuses_to_process == ["Allocated"]
    assert settings.timeout == 3.0 and isinstance(settings.timeout, float)
    assert dict(settings.delivery_methods) == {
        "IN_STORE-DEFAULT": "In Store",
        "ONLINE-DEFAULT": "Ground",
    }
    assert settings.tags == ("a",)


def test_merchant_keys_of_the_wrong_type_are_named(tmp_path, registry):
    config = write(
        tmp_path,
        '[merchants.A]\nbackend = ["memory"]\n[merchants.B]\nbackend = "other"\nname = 5\n',
    )
    assert problems(config, registry) == [
        "merchants.A.backend: expected a backend name, got an array",
        "merchants.B.name: expected a string, got a number (5)",
    ]
