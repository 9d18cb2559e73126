"""``omsbridge demo``: the main job on the embedded default, locally."""

from __future__ import annotations

from pathlib import Path

import click

from omsbridge.cli._output import emit_json, json_option


@click.command()
@json_option
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the config and store here.",
)
def demo(as_json: bool, workdir: Path | None) -> None:
    """Start local OMS emulators and run a store day through omsbridge.

    Sales with each tender, a mixed cart, an endless-aisle order, a return, an exchange,
    cancellations and searches, for each demo merchant. Exit 0 only if everything succeeded.

    \b
    Example:
      omsbridge demo
      omsbridge demo --json > demo.json
    """
    from rich.console import Console
    from rich.table import Table

    from omsbridge.demo import StepOutcome, run_demo

    console = Console(stderr=as_json)
    if workdir:
        workdir.mkdir(parents=True, exist_ok=True)
    marks = {"ok": "[green]ok[/]", "failed": "[red]FAILED[/]", "skipped": "[yellow]skipped[/]"}

    def progress(outcome: StepOutcome) -> None:
        console.print(f"  {outcome.merchant_id:<9} {marks[outcome.status]:<22} {outcome.step}")

    console.print("[bold]omsbridge demo[/]: starting local servers and posting a store day\n")
    report = run_demo(workdir=workdir, on_step=progress)
    if as_json:
        import attrs  # here, not at the top: ``omsbridge --help`` should not import attrs

        emit_json({"ok": report.ok, "config": report.config_path, "notes": report.notes,
                   "steps": [attrs.asdict(o) for o in report.outcomes]})  # fmt: skip
    else:
        table = Table(title="Summary")
        for column in ("merchant", "step", "result", "what happened"):
            table.add_column(column, overflow="fold")
        for o in report.outcomes:
            table.add_row(o.merchant_id, o.step, marks[o.status], o.error or _describe(o.details))
        console.print(table)
        for note in report.notes:
            console.print(f"note: {note}")
        counts = {
            s: sum(o.status == s for o in report.outcomes) for s in ("ok", "failed", "skipped")
        }
        console.print(
            f"\n{counts['ok']} steps ok, {counts['failed']} failed, {counts['skipped']} skipped. "
            f"Config used: {report.config_path}"
        )
    if not report.ok or not report.outcomes:
        raise SystemExit(1)


def _describe(details: dict[str, object]) -> str:
    """A short line for the summary: the order and its total when there is one."""
    if "order_id" in details and "total" in details:
        return f"order {details['order_id']}  {details['total']}"
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in details.items())
