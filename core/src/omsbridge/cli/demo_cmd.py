"""``omsbridge demo``: the main job on the embedded default, locally."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from omsbridge.cli._output import emit_json, json_option

_MARKS = {"ok": ("ok", "green"), "failed": ("FAILED", "red"), "skipped": ("skipped", "yellow")}


@click.command()
@json_option
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the config and store here (default: a temporary directory, removed at the end).",
)
@click.option(
    "--keep", is_flag=True, help="Keep the temporary directory (its path is printed at the end)."
)
def demo(as_json: bool, workdir: Path | None, keep: bool) -> None:
    """Start every local OMS emulator installed and run a day through omsbridge on each.

    The POS day (sales with each tender, a mixed cart, an endless-aisle order, a return, an
    exchange, cancellations, searches) and, where the emulator plays the OMS side, the
    omnichannel day (BOPIS from the event feed to pickup, BOFIS shipped and rejected, ship to
    store, a no-show, BORIS). Each step shows the API calls it spent where the emulator counts
    them. Exit 0 only if every step succeeded.

    \b
    Example:
      omsbridge demo
      omsbridge demo --json > demo.json
    """
    import logging
    import tempfile

    import attrs

    from omsbridge.demo import StepOutcome, run_demo

    # The emulators' request logs (werkzeug) and the clients' (httpx) would bury the steps.
    for noisy in ("werkzeug", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if keep and workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="omsbridge-demo-"))
    say = click.echo if not as_json else _to_stderr

    def progress(o: StepOutcome) -> None:
        text, colour = _MARKS[o.status]
        mark = click.style(f"{text:<8}", fg=colour)
        calls = f"{o.api_calls:>4} API calls" if o.api_calls is not None else " " * 14
        tail = f"  ({o.error})" if o.error else f"  {_describe(o.details)}"
        say(f"  {o.merchant_id:<16} {mark} {calls}  {o.step}{tail}")

    say(click.style("omsbridge demo", bold=True) + ": starting local servers, playing a day\n")
    report = run_demo(workdir=workdir, on_step=progress)
    counts = {s: sum(o.status == s for o in report.outcomes) for s in _MARKS}
    if as_json:
        emit_json({"ok": report.ok, "config": report.config_path if report.kept else None,
                   "notes": report.notes, "counts": counts,
                   "steps": [attrs.asdict(o) for o in report.outcomes]})  # fmt: skip
    for note in report.notes:
        say(f"note: {note}")
    spent: dict[str, int] = {}
    for o in report.outcomes:
        if o.api_calls is not None:
            spent[o.merchant_id] = spent.get(o.merchant_id, 0) + o.api_calls
    for merchant_id, calls in spent.items():
        say(f"{merchant_id}: {calls} API calls in all")
    where = f" Config kept: {report.config_path}" if report.kept else ""
    say(
        f"\n{counts['ok']} steps ok, {counts['failed']} failed, {counts['skipped']} skipped.{where}"
    )
    if not report.ok or not report.outcomes:
        raise SystemExit(1)


def _to_stderr(message: str) -> None:
    click.echo(message, err=True)


def _describe(details: dict[str, Any]) -> str:
    """A short text for the step's line: the order and its total when there is one."""
    if "order_id" in details and "total" in details:
        return f"order {details['order_id']}  {details['total']}"
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in details.items())
