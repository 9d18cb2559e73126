"""Benchmark: how long the command line takes to start (run by ``nox -s bench``).

Prints, for each command, the median (min-max) over ``--runs`` runs of the whole process, timed
from outside (start to exit, start-up included), wall and CPU (user + system of the child):

* ``python -c pass`` (the floor: the interpreter alone);
* ``omsbridge --help`` and ``omsbridge validate FILE`` of one example (target: <= 0.15 s);
* ``omsbridge backends``;
* ``omsbridge post`` of one sale for a Salesforce merchant, up to its FIRST network connection
  (target: <= 0.3 s): the login endpoint is a local socket that notes when the connection
  arrives and the process's CPU so far (``/proc/PID/stat``), then the run is ended. That is
  omsbridge's own time before the network; the OMS's time is not in it.

Bytecode: an installed wheel has its modules compiled (pip compiles them at install); this
environment may set ``PYTHONDONTWRITEBYTECODE``, which makes every start compile every module
it imports again. The figures are taken with a bytecode cache (``PYTHONPYCACHEPREFIX`` in a
temporary folder, filled by an uncounted warm-up run); ``--no-cache`` also prints them without
one, as such an environment sees them. The machine's load moves wall times; CPU is steadier.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "transactions" / "sale-card.json"
TICKS = os.sysconf("SC_CLK_TCK")


def _omsbridge() -> str:
    found = Path(sys.executable).with_name("omsbridge")
    return str(found) if found.exists() else "omsbridge"


def _env(cache: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if cache is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="omsbridge-nocache-")
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def _whole(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``command`` (the child's own accounting)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1, 2):
        raise SystemExit(f"{' '.join(command)} exited {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def _cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def _until_connect(folder: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds from the start of ``omsbridge post`` to its first connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = folder / "omsbridge.toml"
    config.write_text(
        f"""[store]
path = "outbox.db"

[merchants.BENCH]
backend = "salesforce"
currency = "USD"

[merchants.BENCH.salesforce]
url_base = "http://127.0.0.1:{port}"
allow_insecure_sandbox_url = true
auth_flow = "password"
username = "bench@example.com"
password = {{ env = "BENCH_SF_PASSWORD" }}
client_id = "bench"
client_secret = {{ env = "BENCH_SF_SECRET" }}
"""
    )
    env = {**env, "BENCH_SF_PASSWORD": "x", "BENCH_SF_SECRET": "y"}
    command = [_omsbridge(), "post", str(EXAMPLE), "--config", str(config), "--merchant", "BENCH"]
    arrived: list[tuple[float, float]] = []
    started = 0.0
    proc: subprocess.Popen[bytes] | None = None

    def accept() -> None:
        conn, _ = listener.accept()
        at = time.perf_counter()
        assert proc is not None
        arrived.append((at - started, _cpu_of(proc.pid)))
        conn.close()

    waiter = threading.Thread(target=accept, daemon=True)
    waiter.start()
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder
    )
    waiter.join(timeout=30)
    proc.kill()
    proc.wait()
    listener.close()
    if not arrived:
        raise SystemExit("omsbridge post never connected to the login endpoint")
    return arrived[0]


def _row(name: str, runs: int, once: Callable[[], tuple[float, float]]) -> None:
    once()  # warm-up: fills the bytecode cache, not counted
    walls, cpus = zip(*(once() for _ in range(runs)), strict=True)

    def spread(values: tuple[float, ...]) -> str:
        return f"{statistics.median(values):6.3f} ({min(values):.3f}-{max(values):.3f})"

    print(f"  {name:<46} {spread(walls)}  {spread(cpus)}")


def _table(runs: int, cache: Path | None) -> None:
    env = _env(cache)
    cli = _omsbridge()
    example = str(EXAMPLE)
    print(f"  {'':<46} {'wall s median (min-max)':<24} {'CPU s median (min-max)'}")
    _row("python -c pass (the interpreter alone)", runs,
         lambda: _whole([sys.executable, "-c", "pass"], env))  # fmt: skip
    _row("omsbridge --help", runs, lambda: _whole([cli, "--help"], env))
    _row("omsbridge validate FILE", runs, lambda: _whole([cli, "validate", example], env))
    _row("omsbridge backends", runs, lambda: _whole([cli, "backends"], env))
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        _row("omsbridge post (Salesforce), to its 1st connection", runs,
             lambda: _until_connect(Path(tmp), env))  # fmt: skip


def main() -> None:
    """Time the commands and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="counted runs per command")
    parser.add_argument(
        "--no-cache", action="store_true", help="also without a bytecode cache (compiles each run)"
    )
    args, _ = parser.parse_known_args()
    print(f"omsbridge CLI start-up, whole process, {args.runs} runs each")
    with tempfile.TemporaryDirectory(prefix="bench-cli-pycache-") as cache:
        print("with a bytecode cache (as an installed wheel)")
        _table(args.runs, Path(cache))
    if args.no_cache:
        print("without a bytecode cache (PYTHONDONTWRITEBYTECODE: every module compiled each run)")
        _table(args.runs, None)


if __name__ == "__main__":
    main()
