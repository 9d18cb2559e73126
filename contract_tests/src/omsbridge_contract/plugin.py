"""The pytest plugin: ``pytest --oms-backend NAME`` runs the contract scenarios against NAME.

Opt in with one line in the ``conftest.py`` of the directory you run pytest on (or your
top-level one)::

    pytest_plugins = ["omsbridge_contract.plugin"]

Without ``--oms-backend`` the plugin does nothing. With it, the scenario modules shipped inside
this package are added to what pytest collects, the backend and its harness are looked up in
omsbridge's plugin manager, and every scenario runs against a fresh backend instance inside its
own cassette. Options:

``--oms-backend NAME``  the backend to test (a name registered through ``omsbridge_register_backends``)
``--oms-cassettes DIR`` use this cassette directory instead of the harness's ``cassette_dir``
``--oms-variant NAME``  run against one of the harness's ``variants`` (e.g. an org profile);
                        its cassettes live in ``cassette_dir/NAME``. Default: the first variant
``--record-mode MODE``  pytest-recording's option: ``none`` (default: replay only, network
                        blocked), ``rewrite`` (delete and record again), ``once``, ``new_episodes``
"""

from __future__ import annotations

import fnmatch
import os
import shlex
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import pluggy
import pytest

from omsbridge.config import parse_config
from omsbridge.errors import OMSBridgeError
from omsbridge.plugins import call_registration, get_plugin_manager
from omsbridge.registry import BackendRegistry
from omsbridge.spi import OPERATION_FLAVOURS, Capability, OrderBackend
from omsbridge_contract import hookspecs, pytest_hooks
from omsbridge_contract.cassettes import base_vcr_config
from omsbridge_contract.contract import Contract
from omsbridge_contract.harness import Harness, overrides
from omsbridge_contract.registry import SCENARIO_MODULES, SCENARIOS, ScenarioInfo

__all__ = ["SCENARIO_MODULES", "Suite", "add_contract_hookspecs", "collect_harnesses"]

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"

_SUITE = pytest.StashKey["Suite | str"]()
_RECORDING = pytest.StashKey["_Recording"]()
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


# -- wiring into pytest --------------------------------------------------------------------------


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Add this plugin's pytest hooks, and load pytest-recording if autoloading was disabled."""
    pluginmanager.add_hookspecs(pytest_hooks)
    try:
        import pytest_recording.plugin as recording
    except ImportError:  # pragma: no cover - a declared dependency
        return
    if not pluginmanager.is_registered(recording) and not pluginmanager.is_blocked("recording"):
        pluginmanager.register(recording, "recording")


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--oms-backend``, ``--oms-cassettes`` and ``--oms-variant``."""
    group = parser.getgroup("omsbridge-contract", "omsbridge contract suite")
    group.addoption(
        "--oms-backend",
        metavar="NAME",
        default=None,
        help="run the omsbridge contract scenarios against the backend registered as NAME",
    )
    group.addoption(
        "--oms-cassettes",
        metavar="DIR",
        default=None,
        help="cassette directory for the scenarios (default: the harness's cassette_dir)",
    )
    group.addoption(
        "--oms-variant",
        metavar="NAME",
        default=None,
        help="the harness variant to run (one of its `variants`, e.g. an org profile)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers, and add the scenario modules to the collection when asked to."""
    config.addinivalue_line("markers", "oms_contract: an omsbridge contract-suite scenario")
    config.addinivalue_line(
        "markers", "oms_scenario(info): the scenario's catalogue entry (what it needs)"
    )
    config.stash[_REPORTS] = {}
    if not config.getoption("oms_backend", default=None):
        return
    present = {Path(arg.split("::")[0]).resolve() for arg in config.args}
    if not present & {SCENARIO_DIR, *(SCENARIO_DIR / name for name in SCENARIO_MODULES)}:
        # The directory (not each file) so node ids read scenarios' module names even when the
        # package is installed outside the rootdir.
        config.args.append(str(SCENARIO_DIR))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """Collect the scenario modules even where ``python_files`` would not match them."""
    if file_path.parent != SCENARIO_DIR or file_path.name not in SCENARIO_MODULES:
        return None
    patterns = parent.config.getini("python_files")
    if any(fnmatch.fnmatch(file_path.name, pattern) for pattern in patterns):
        return None  # pytest's own python plugin collects it
    module: pytest.Module = pytest.Module.from_parent(parent, path=file_path)
    return module


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Name the backend, harness, cassettes and record mode at the top of the run."""
    if not config.getoption("oms_backend", default=None):
        return []
    suite = _suite(config)
    if isinstance(suite, str):
        return [f"omsbridge contract: {suite}"]
    where = suite.cassette_dir if suite.cassette_dir is not None else "none (no HTTP recorded)"
    return [
        f"omsbridge contract: backend {suite.backend_name!r} ({suite.backend_class.__module__}."
        f"{suite.backend_class.__qualname__}), harness {suite.harness_class.__qualname__}",
        f"omsbridge contract: cassettes {where}, record mode {suite.record_mode}"
        + (f", variant {suite.variant}" if suite.variant is not None else ""),
    ]


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Stop with a clear message when the backend cannot be tested; skip scenarios collected
    without ``--oms-backend``."""
    scenarios = [item for item in items if item.get_closest_marker("oms_contract")]
    if not scenarios:
        return
    if not config.getoption("oms_backend", default=None):
        skip = pytest.mark.skip(reason="contract scenario: run with --oms-backend NAME")
        for item in scenarios:
            item.add_marker(skip)
        return
    suite = _suite(config)
    if isinstance(suite, str):
        pytest.exit(f"omsbridge contract: {suite}", returncode=pytest.ExitCode.USAGE_ERROR)
    expected = dict(suite.harness_class.expected_failures)
    unknown = sorted(set(expected) - {item.name for item in scenarios} - set(SCENARIOS))
    if unknown:
        pytest.exit(
            f"omsbridge contract: {suite.harness_class.__qualname__}.expected_failures names "
            f"no scenario: {', '.join(unknown)}",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )
    for item in scenarios:
        if item.name in expected:
            item.add_marker(pytest.mark.xfail(reason=expected[item.name], strict=True))
    # Run the areas in catalogue order (the recordings checks last), in the scenarios' own slots.
    slots = [i for i, item in enumerate(items) if item.get_closest_marker("oms_contract")]
    order = {name: i for i, name in enumerate(SCENARIO_MODULES)}
    ordered = sorted(
        (items[i] for i in slots), key=lambda item: order.get(item.path.name, len(order))
    )
    for slot, item in zip(slots, ordered, strict=True):
        items[slot] = item


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report, so a cassette of a failed scenario is not saved."""
    report = yield
    if item.get_closest_marker("oms_contract"):
        item.config.stash[_REPORTS][f"{item.nodeid}::{report.when}"] = report
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Fail a scenario whose cassette was not replayed exactly, naming what differed (also when
    the backend's own error for an unrecorded request is what ended the test)."""
    recording = item.stash.get(_RECORDING, None)
    try:
        result = yield
    except Exception as exc:
        if recording is not None and recording.unmatched:
            raise AssertionError(recording.unmatched_message()) from exc
        if recording is not None and recording.held:
            # A held long poll never answers: if the scenario waited on it, say so.
            listed = "\n  ".join(recording.held)
            raise AssertionError(
                f"{exc}\n(unrecorded long poll(s) held open on replay:\n  {listed}\n"
                f"re-record with: {recording.rerecord})"
            ) from exc
        raise
    if recording is not None:
        # What the backend sends while closing (ending a streaming session) was recorded too:
        # close it before checking that every interaction was played.
        recording.settle()
        if recording.finish is not None:
            recording.finish()
        recording.verify()
    return result


# -- the backend under test ----------------------------------------------------------------------


@attrs.frozen
class Suite:
    """The resolved contract run: which backend, which harness, which cassettes, which mode."""

    backend_name: str
    backend_class: type[OrderBackend]
    harness_class: type[Harness]
    registry: BackendRegistry
    plugin_manager: pluggy.PluginManager
    cassette_dir: Path | None
    record_mode: str
    recording_disabled: bool
    variant: str | None = None

    @property
    def replaying(self) -> bool:
        """True when only committed cassettes are used (record mode ``none``)."""
        return self.record_mode == "none" and not self.recording_disabled

    @property
    def live(self) -> bool:
        """True when the run may reach real servers (recording, or recording disabled)."""
        return not self.replaying


def add_contract_hookspecs(pm: pluggy.PluginManager) -> None:
    """Add ``omsbridge_contract_harnesses`` to an omsbridge plugin manager (once)."""
    caller = getattr(pm.hook, "omsbridge_contract_harnesses", None)
    if caller is None or not caller.has_spec():
        pm.add_hookspecs(hookspecs)


def collect_harnesses(pm: pluggy.PluginManager) -> dict[str, type[Harness]]:
    """Every harness the plugins register, by backend name; a plugin that fails is reported with a
    warning naming it (an error under ``OMSBRIDGE_STRICT_PLUGINS=1``) and the others still count."""
    add_contract_hookspecs(pm)
    found: dict[str, type[Harness]] = {}

    def per_plugin(plugin_name: str) -> dict[str, Any]:
        def register(harness_class: type[Harness]) -> None:
            if not (isinstance(harness_class, type) and issubclass(harness_class, Harness)):
                raise TypeError(
                    f"{harness_class!r} is not a subclass of omsbridge_contract.Harness"
                )
            name = getattr(harness_class, "backend", None)
            if not isinstance(name, str) or not name:
                raise TypeError(f"{harness_class.__qualname__}.backend must name a backend")
            if name in found and found[name] is not harness_class:
                raise ValueError(
                    f"two harnesses for backend {name!r}: {found[name].__qualname__} and "
                    f"{harness_class.__qualname__} (plugin {plugin_name!r})"
                )
            found[name] = harness_class

        return {"register": register}

    call_registration(pm, "omsbridge_contract_harnesses", per_plugin=per_plugin)
    return found


def _resolve(config: pytest.Config) -> Suite:
    name = config.getoption("oms_backend")
    pm = config.hook.pytest_omsbridge_plugin_manager(config=config) or get_plugin_manager()
    registry = BackendRegistry.from_plugins(pm)
    if name not in registry:
        installed = ", ".join(registry.names()) or "none"
        raise LookupError(
            f"no backend named {name!r} is registered (installed backends: {installed}); is its "
            "distribution installed in this environment (pip install -e ...)?"
        )
    harnesses = collect_harnesses(pm)
    harness_class = harnesses.get(name)
    if harness_class is None:
        listed = ", ".join(sorted(harnesses)) or "none"
        raise LookupError(
            f"backend {name!r} is registered but no plugin registers a contract harness for it "
            f"(harnesses: {listed}); implement the omsbridge_contract_harnesses(register) hook "
            "next to omsbridge_register_backends (see docs/plugin-author-guide.md)"
        )
    for required in ("settings", "order_count"):
        if not overrides(harness_class, required):
            raise LookupError(f"{harness_class.__qualname__} must implement {required}()")
    variant = _variant(config, harness_class)
    option = config.getoption("oms_cassettes", default=None)
    cassettes = option if option else harness_class.cassette_dir
    cassette_dir = None if cassettes is None else Path(cassettes).expanduser().resolve()
    if cassette_dir is not None and variant is not None and not option:
        cassette_dir = cassette_dir / variant
    return Suite(
        backend_name=name,
        backend_class=registry.get(name),
        harness_class=harness_class,
        registry=registry,
        plugin_manager=pm,
        cassette_dir=cassette_dir,
        record_mode=config.getoption("record_mode", default=None) or "none",
        recording_disabled=bool(config.getoption("disable_recording", default=False)),
        variant=variant,
    )


def _variant(config: pytest.Config, harness_class: type[Harness]) -> str | None:
    """The variant asked for with ``--oms-variant``, checked against the harness's list."""
    asked = config.getoption("oms_variant", default=None)
    variants = tuple(harness_class.variants)
    if not variants:
        if asked:
            raise LookupError(
                f"--oms-variant {asked!r}: {harness_class.__qualname__} declares no variants"
            )
        return None
    if asked is None:
        return variants[0]
    if asked not in variants:
        raise LookupError(
            f"--oms-variant {asked!r} is not one of {harness_class.__qualname__}'s variants "
            f"({', '.join(variants)})"
        )
    return str(asked)


def _suite(config: pytest.Config) -> Suite | str:
    """The resolved run, or why it cannot run (computed once)."""
    if _SUITE not in config.stash:
        try:
            config.stash[_SUITE] = _resolve(config)
        except (LookupError, OMSBridgeError, TypeError, ValueError) as exc:
            config.stash[_SUITE] = str(exc)
    return config.stash[_SUITE]


def _build_backend(suite: Suite, harness: Harness) -> OrderBackend:
    settings = harness.settings()
    merchant = harness.merchant()
    if isinstance(settings, Mapping):
        # Through omsbridge's own loader, exactly as a merchant's config file would be read.
        table: dict[str, Any] = {"backend": suite.backend_name, suite.backend_name: dict(settings)}
        for key in ("locale", "region", "currency"):
            if getattr(merchant, key):
                table[key] = getattr(merchant, key)
        config = parse_config(
            {"merchants": {merchant.merchant_id: table}},
            base_dir=harness.workdir,
            registry=suite.registry,
        )
        settings = config.merchants[merchant.merchant_id].settings
    config_class = suite.backend_class.config_class
    assert isinstance(settings, config_class), (
        f"{type(harness).__qualname__}.settings() must return a {config_class.__qualname__} or a "
        f"mapping, got {type(settings).__name__}"
    )
    return suite.backend_class(settings, merchant)


# -- recording -----------------------------------------------------------------------------------


class _Recording:
    """One scenario's cassette: opened before the backend is built, checked after the test."""

    def __init__(self, suite: Suite, harness: Harness, path: Path, config: pytest.Config) -> None:
        from vcr import VCR

        self.path = path
        self.suite = suite
        self.harness = harness
        self.rerecord = _rerecord_command(suite, config, path.stem)
        """The one command that records this scenario's cassette again."""
        mode = suite.record_mode
        if mode == "rewrite":
            path.unlink(missing_ok=True)
            mode = "new_episodes"
        options = base_vcr_config(mode, harness.vcr_config())
        record_on_exception = options.pop("record_on_exception")
        self.vcr = VCR(record_on_exception=record_on_exception)
        hook = getattr(config.hook, "pytest_recording_configure", None)
        if hook is not None:
            hook(config=config, vcr=self.vcr)
        self._context = self.vcr.use_cassette(str(path), **options)
        self.cassette: Any = None
        self.unmatched: list[str] = []
        self.long_poll_paths = tuple(type(harness).long_poll_paths)
        self.held: list[str] = []
        """Unrecorded long polls held open on replay (see :attr:`Harness.long_poll_paths`)."""
        self._held_ids: set[int] = set()
        self._held_lock = threading.Lock()
        self._closed = threading.Event()
        self._played = threading.Condition()
        self._waiting: set[int] = set()  # cassette indices of recorded long polls held back
        self.finish: Callable[[], None] | None = None
        """Ends the scenario's backend (set by the ``oms`` fixture); run before :meth:`verify`."""

    def _is_long_poll(self, request: Any) -> bool:
        path = urlsplit(request.uri).path
        return any(path.startswith(prefix) for prefix in self.long_poll_paths)

    def __enter__(self) -> _Recording:
        self.cassette = self._context.__enter__()
        original = self.cassette.can_play_response_for
        play = self.cassette.play_response

        def can_play(request: Any) -> bool:
            playable = original(request)
            if playable or not self.cassette.write_protected:
                return bool(playable)
            if self._is_long_poll(request):
                # A poll that was still open when the recording stopped: it never got an
                # answer then, so it gets none now (play_response holds it) instead of failing.
                with self._held_lock:
                    self.held.append(f"{request.method} {request.uri}")
                    self._held_ids.add(id(request))
                return True
            if not self.harness.unrecorded_request_allowed(request.method, request.uri):
                self.unmatched.append(f"{request.method} {request.uri}")
            return False

        def play_response(request: Any) -> Any:
            with self._held_lock:
                held = id(request) in self._held_ids
                self._held_ids.discard(id(request))
            if not held:
                waited = None
                if self.cassette.write_protected and self._is_long_poll(request):
                    waited = self._wait_for_earlier(request)
                try:
                    return play(request)
                finally:
                    with self._played:
                        if waited is not None:
                            self._waiting.discard(waited)
                        self._played.notify_all()
            # Hold it like the server held it, until the cassette closes (the backend's close
            # abandons it); then it fails as a dropped connection would.
            self._closed.wait(_LONG_POLL_HOLD_S)
            raise ConnectionAbortedError(
                f"long poll {request.method} {request.uri} was still open when the recording "
                "stopped; closed with the cassette"
            )

        # Seen even when the backend swallows vcrpy's error for an unrecorded request.
        self.cassette.can_play_response_for = can_play
        self.cassette.play_response = play_response
        return self

    def _wait_for_earlier(self, request: Any) -> int | None:
        """Answer a recorded long poll no sooner than it was answered when recording.

        The server held the poll until something happened (an event published by a request
        recorded before the poll's answer); replayed at once, the answer would reach the
        backend before the scenario caused it. So wait until every interaction recorded before
        this one has been played (a stale cassette gives up after a while and fails as usual).
        """
        cassette = self.cassette
        index = next(
            (i for i, _ in cassette._responses(request) if not cassette.play_counts[i]), None
        )
        if index is None:
            return None
        deadline = time.monotonic() + _LONG_POLL_HOLD_S
        with self._played:
            # Stays listed until played (play_response), so settle() waits for it.
            self._waiting.add(index)
            while any(not cassette.play_counts[i] for i in range(index)):
                left = deadline - time.monotonic()
                if left <= 0 or self._closed.is_set():
                    break
                self._played.wait(min(left, 0.5))
        return index

    def settle(self) -> None:
        """Give the backend's background thread a moment to play the recorded long polls that
        are due (everything recorded before them was played), before the backend is closed."""
        if not (self.suite.replaying and self.long_poll_paths):
            return
        cassette = self.cassette

        def due() -> bool:
            # Only polls already sent and waiting their turn: a request the backend has not
            # sent yet (its closing /meta/disconnect) is not waited for.
            return any(
                all(cassette.play_counts[j] for j in range(i)) and not cassette.play_counts[i]
                for i in self._waiting
            )

        deadline = time.monotonic() + _SETTLE_S
        with self._played:
            while due() and time.monotonic() < deadline:
                self._played.wait(0.05)

    def close(self, failed: bool) -> None:
        """Close the cassette; a failed scenario's recording is thrown away."""
        self._closed.set()
        with self._played:
            self._played.notify_all()
        if failed:
            error = AssertionError("scenario failed")
            self._context.__exit__(AssertionError, error, None)
        else:
            self._context.__exit__(None, None, None)

    def unmatched_message(self) -> str:
        """What the backend sent that the cassette does not hold, and how to re-record."""
        listed = "\n  ".join(self.unmatched)
        what = (
            f"{self.path} does not hold"
            if self.path.exists()
            else f"there is no cassette {self.path} for"
        )
        return (
            f"the backend sent {len(self.unmatched)} request(s) that {what} "
            f"(a changed request, or a stale or missing cassette):\n  {listed}\n"
            f"re-record with: {self.rerecord}"
        )

    def verify(self) -> None:
        """Fail unless the replay matched the cassette exactly."""
        if self.unmatched:
            raise AssertionError(self.unmatched_message())
        if self.suite.replaying and not self.cassette.all_played:
            unplayed = [
                f"{request.method} {request.uri}"
                for index, request in enumerate(self.cassette.requests)
                if not self.cassette.play_counts[index]
            ]
            listed = "\n  ".join(unplayed)
            raise AssertionError(
                f"{self.path} holds {len(unplayed)} interaction(s) the scenario never played "
                f"(the backend now sends fewer requests, or the cassette is stale):\n  {listed}\n"
                f"re-record with: {self.rerecord}"
            )


_SETTLE_S = 2.0
"""How long a passed scenario waits for recorded long polls that are due to be played."""
_LONG_POLL_HOLD_S = 120.0
"""The longest an unrecorded long poll is held on replay if the cassette is never closed."""


def _rerecord_command(suite: Suite, config: pytest.Config, scenario_id: str) -> str:
    here = config.invocation_params.dir
    paths = [
        os.path.relpath(arg, here) if os.path.isabs(arg) else arg
        for arg in config.args
        if Path(arg.split("::")[0]).resolve() != SCENARIO_DIR
    ]
    parts = ["pytest", *paths, "--oms-backend", suite.backend_name]
    if config.getoption("oms_cassettes", default=None):
        parts += ["--oms-cassettes", str(config.getoption("oms_cassettes"))]
    if suite.variant is not None:
        parts += ["--oms-variant", suite.variant]
    parts.append("--record-mode=rewrite")
    return " ".join(shlex.quote(p) for p in [*parts, "-k", scenario_id])


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def oms_suite(pytestconfig: pytest.Config) -> Suite:
    """The resolved contract run (backend class, harness class, cassettes, record mode)."""
    suite = _suite(pytestconfig)
    if isinstance(suite, str):
        pytest.fail(f"omsbridge contract: {suite}", pytrace=False)
    return suite


@pytest.fixture(scope="session")
def oms_harness(oms_suite: Suite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """The backend's harness, started once for the session (``start()`` / ``stop()``)."""
    workdir = tmp_path_factory.mktemp(f"oms-{oms_suite.backend_name}")
    harness = oms_suite.harness_class(live=oms_suite.live, workdir=workdir)
    harness.variant = oms_suite.variant
    with harness:
        yield harness


@pytest.fixture
def oms_scenario(request: pytest.FixtureRequest, oms_suite: Suite) -> ScenarioInfo:
    """The running scenario's catalogue entry; skips, with the reason, what cannot run here."""
    marker = request.node.get_closest_marker("oms_scenario")
    if marker is None:
        pytest.fail(
            "the oms fixture is for contract scenarios (@scenario(...)) only", pytrace=False
        )
    info: ScenarioInfo = marker.args[0]
    backend = oms_suite.backend_class
    missing = [c for c in info.requires if c not in backend.capabilities]
    if missing:
        listed = ", ".join(f"{c.name} ({c.value})" for c in missing)
        pytest.skip(f"backend {oms_suite.backend_name!r} does not declare capability {listed}")
    # Flavours (returns without receipt, returns as own orders) are not operations of their
    # own: leaving them out does not make any method Unsupported.
    if info.undeclared and backend.capabilities >= set(Capability) - OPERATION_FLAVOURS:
        pytest.skip(
            f"backend {oms_suite.backend_name!r} declares every operation: nothing is unsupported"
        )
    harness = oms_suite.harness_class
    if info.fault is not None and info.fault not in harness.faults:
        # Faults are what a harness can provoke, not what the backend claims: an honest skip.
        pytest.skip(f"harness {harness.__qualname__} cannot inject fault {info.fault.value!r}")
    lacking = [h for h in info.harness if not overrides(harness, h)]
    if lacking:
        # Declared means done: the backend claims every capability this scenario needs, so a
        # harness that cannot set the scenario up is a gap to fix, not a reason to pass quietly.
        listed = ", ".join(f"{h}()" for h in lacking)
        declared = ", ".join(c.name for c in info.requires) or "its operations"
        pytest.fail(
            f"backend {oms_suite.backend_name!r} declares {declared}, but harness "
            f"{harness.__qualname__} does not implement {listed}, which scenario {info.id} "
            "needs to set up its test: implement it (docs/plugin-author-guide.md, '6. The contract harness') "
            "or stop declaring the capability",
            pytrace=False,
        )
    return info


@pytest.fixture
def oms_cassette(
    request: pytest.FixtureRequest,
    oms_scenario: ScenarioInfo,
    oms_suite: Suite,
    oms_harness: Harness,
) -> Iterator[Any]:
    """The scenario's cassette (``<cassette dir>/<scenario id>.yaml``), open for the whole test.

    In record mode ``none`` the network is blocked as well (``--allowed-hosts`` still applies).
    """
    from pytest_recording import network

    blocking = None
    if oms_suite.replaying:
        hosts = request.config.getoption("allowed_hosts", default=None)
        blocking = network.blocking_context(allowed_hosts=hosts.split(",") if hosts else None)
        blocking.__enter__()
    recording = None
    try:
        if oms_suite.cassette_dir is not None and not oms_suite.recording_disabled:
            os.makedirs(oms_suite.cassette_dir, exist_ok=True)
            path = oms_suite.cassette_dir / f"{oms_scenario.id}.yaml"
            if oms_suite.replaying and not path.exists():
                # vcrpy's own advice (record_mode='once') does not apply to this suite.
                pytest.fail(
                    f"no cassette for scenario {oms_scenario.id} at {path}: record it against "
                    "your local servers (the harness starts them when recording) with:\n  "
                    f"{_rerecord_command(oms_suite, request.config, oms_scenario.id)}\n"
                    "then commit the new file (docs/contract-suite.md, 'Re-recording')",
                    pytrace=False,
                )
            recording = _Recording(oms_suite, oms_harness, path, request.config).__enter__()
            request.node.stash[_RECORDING] = recording
        yield recording.cassette if recording is not None else None
    finally:
        if recording is not None:
            reports = request.config.stash[_REPORTS]
            failed = any(
                reports.get(f"{request.node.nodeid}::{when}") is not None
                and reports[f"{request.node.nodeid}::{when}"].failed
                for when in ("setup", "call")
            )
            recording.close(failed)
        if blocking is not None:
            blocking.__exit__(None, None, None)


@pytest.fixture
def oms(
    request: pytest.FixtureRequest,
    oms_scenario: ScenarioInfo,
    oms_suite: Suite,
    oms_harness: Harness,
    oms_cassette: Any,
) -> Iterator[Contract]:
    """The backend under test, built for this scenario inside its cassette, with its harness."""
    oms_harness.reset()
    backend = _build_backend(oms_suite, oms_harness)
    # A backend may declare less as configured than its class does (a single-currency org, an
    # SPI in front of a narrower backend): skip, with the reason, what this instance lacks.
    narrowed = [c for c in oms_scenario.requires if c not in backend.capabilities]
    if narrowed:
        backend.close()
        listed = ", ".join(f"{c.name} ({c.value})" for c in narrowed)
        pytest.skip(f"backend {oms_suite.backend_name!r} as configured does not declare {listed}")
    finished = False

    def finish() -> None:
        nonlocal finished
        if finished:
            return
        finished = True
        try:
            oms_harness.clear_faults()
        finally:
            backend.close()

    recording = request.node.stash.get(_RECORDING, None)
    if recording is not None:
        recording.finish = finish
    try:
        yield Contract(backend=backend, harness=oms_harness, info=oms_scenario)
    finally:
        finish()
