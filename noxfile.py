"""Development sessions. `nox` runs lint, typecheck, tests and the contract suite (what CI runs).

nox                 # everything CI runs
nox -s demo         # the local demo: a store day on the embedded default, no account needed
nox -s bench        # benchmarks, printing figures
nox -s lowest       # the tests at the lowest versions the pyproject.toml files allow
nox -s fuzz         # the validator property tests, long and randomly seeded (not in CI)
nox -s contract -- --record-mode=rewrite   # re-record cassettes against the local servers
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "contract", "lowest"]
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True

# None: the Python that runs nox (see ./dev), so any 3.11+ works without a second install.
PYTHON = None
DISTRIBUTIONS = [
    "./core[test]",
    "./contract_tests[test]",
    "./plugins/pos_spi[test]",
    "./plugins/salesforce_sandbox[test]",
    "./plugins/salesforce_oms[test]",
]


def _install_all(session: nox.Session, *extra: str) -> None:
    args: list[str] = []
    for dist in DISTRIBUTIONS:
        args += ["-e", dist]
    session.install(*args, *extra)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy (strict) on the core package."""
    session.install("mypy", "-e", "./core[postgres]")
    session.run("mypy")


TEST_SUITES = [
    ["core/tests"],
    ["plugins/pos_spi/tests", "--ignore=plugins/pos_spi/tests/contract"],
    ["plugins/salesforce_sandbox/tests"],
    ["plugins/salesforce_oms/tests", "--ignore=plugins/salesforce_oms/tests/contract"],
    ["contract_tests/tests"],
]


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit and integration tests of every distribution, each on its own as it ships
    (the shared contract suite runs in `contract`)."""
    _install_all(session)
    for suite in TEST_SUITES:
        session.run("pytest", *suite, *session.posargs)


CONTRACT_RUNS = [
    ("pos-spi", "plugins/pos_spi/tests/contract", []),
    # The pos-spi backend through `omsbridge serve` in front of the reference server and of the
    # Salesforce sandbox (som): live on loopback, since a cassette would replay serve unrun.
    (
        "pos-spi",
        "plugins/pos_spi/tests/contract",
        ["--oms-variant", "serve-posspi", "--disable-recording"],
    ),
    (
        "pos-spi",
        "plugins/pos_spi/tests/contract",
        ["--oms-variant", "serve-salesforce", "--disable-recording"],
    ),
    # Salesforce on each sandbox org profile, with its own cassettes.
    ("salesforce", "plugins/salesforce_oms/tests/contract", ["--oms-variant", "som"]),
    ("salesforce", "plugins/salesforce_oms/tests/contract", ["--oms-variant", "som-minimal"]),
]


def _run_contract(session: nox.Session) -> None:
    """Every contract run (replayed from cassettes), then the Pub/Sub event scenarios."""
    for backend, folder, variant in CONTRACT_RUNS:
        if "--disable-recording" in variant and "--record-mode=rewrite" in session.posargs:
            continue  # live runs record nothing
        session.run(
            "pytest", folder, "--oms-backend", backend, *variant, *session.posargs
        )  # fmt: skip
    if not session.posargs:
        # Pub/Sub is gRPC, which cassettes cannot hold: the fulfillment scenarios run over it
        # live on the harness's loopback sandbox (no network either).
        session.run(
            "pytest", "plugins/salesforce_oms/tests/contract", "--oms-backend", "salesforce",
            "--oms-variant", "som", "--disable-recording", "-k", "fulfillment",
            env={"OMSBRIDGE_CONTRACT_EVENT_TRANSPORT": "pubsub"},
        )  # fmt: skip


@nox.session(python=PYTHON)
def contract(session: nox.Session) -> None:
    """The shared contract suite for every first-party backend, offline from committed cassettes."""
    _install_all(session)
    _run_contract(session)


LOWEST_SUITES = [
    # The scale-out kill test (a minute) runs once, in `tests`; the store contract suite and
    # the exactly-once tests run here on both stores at the lowest psycopg too.
    ["core/tests", "--ignore=core/tests/test_scale_out.py"],
    ["plugins/pos_spi/tests", "--ignore=plugins/pos_spi/tests/contract"],
    ["plugins/salesforce_sandbox/tests"],
    ["plugins/salesforce_oms/tests/backend"],
]
"""What ``lowest`` runs: every suite but the Salesforce export and omnichannel end-to-end runs
(the slowest, on the same libraries as the backend tests), core's scale-out kill test and
contract_tests' own tests."""


@nox.session(python=PYTHON, venv_backend="uv", reuse_venv=False)
def lowest(session: nox.Session) -> None:
    """The floors are true: install every distribution with uv's lowest-direct resolution (each
    direct dependency at the lowest version its pyproject.toml allows) and run the tests and
    both contract replays. A fresh virtualenv each time: uv keeps what is installed if it fits.
    """
    args: list[str] = []
    for dist in DISTRIBUTIONS:
        args += ["-e", dist]
    session.install("--resolution", "lowest-direct", *args)
    # What was resolved, printed from inside the env (uv itself need not be on PATH).
    session.run(
        "python", "-c",
        "import importlib.metadata as m; print(*sorted({f'{d.name}=={d.version}' "
        "for d in m.distributions()}), sep='\\n')",
    )  # fmt: skip
    for suite in LOWEST_SUITES:
        session.run("pytest", *suite, *session.posargs)
    _run_contract(session)


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Run a store day through local reference servers: no account anywhere is needed."""
    _install_all(session)
    session.run("omsbridge", "demo", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks against the local servers; prints figures (never a pass/fail timing test)."""
    _install_all(session)
    session.run("python", "plugins/salesforce_oms/bench/bench_calls.py")
    # Start-up of the command line (with a bytecode cache, as installed; --no-cache: without).
    session.run("python", "core/bench/bench_cli.py")
    session.run("python", "plugins/salesforce_oms/bench/bench_post.py", *session.posargs)
    session.run("python", "core/bench/bench_export.py", *session.posargs)
    # Many workers on one PostgreSQL (`-- --full`: the 20,000-sale run).
    session.run("python", "core/bench/bench_scale.py", *session.posargs)
    session.run("python", "plugins/salesforce_oms/bench/bench_export.py", *session.posargs)
    session.run("python", "plugins/salesforce_oms/bench/bench_events.py")
    # Each merchant on its own org, both transports; `-- --merchants 1 100 1000` for the full set.
    session.run("python", "plugins/salesforce_oms/bench/bench_listeners.py")
    # 32 POS clients through `omsbridge serve` to the reference SPI server.
    session.run("python", "plugins/pos_spi/bench/bench_serve.py", *session.posargs)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Regenerate the committed JSON Schema and run the docs checks."""
    _install_all(session)
    with open("docs/schema/transaction.schema.json", "w", encoding="utf-8") as out:
        session.run("omsbridge", "schema", stdout=out)
    session.run("pytest", "core/tests/test_docs.py")


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """The validator's property tests, long and with fresh random seeds (CI runs them short
    with a fixed seed). `nox -s fuzz -- 100000` sets the examples per property (default 20,000)."""
    session.install("-e", "./core[test]")
    examples = session.posargs[0] if session.posargs else "20000"
    session.run(
        "pytest",
        "core/tests/test_fuzz_transactions.py",
        "-p",
        "no:cacheprovider",
        env={"OMSBRIDGE_FUZZ_EXAMPLES": examples},
    )
    # The served contract (schemathesis against `omsbridge serve`), many examples per operation.
    session.install("-e", "./plugins/pos_spi[test]")
    session.run(
        "pytest",
        "plugins/pos_spi/tests/test_serve_schemathesis.py",
        "-p",
        "no:cacheprovider",
        env={"OMSBRIDGE_FUZZ_EXAMPLES": "500"},
    )
