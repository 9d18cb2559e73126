"""``omsbridge worker``: the long-running process (export job on a schedule + event listeners)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from omsbridge.cli._merchant import config_option

__all__ = ["quiet_http_logs", "worker"]


@click.command()
@config_option
@click.option(
    "--interval",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds between export runs at most.",
)
@click.option("--lease", type=float, default=120.0, show_default=True, help="Claim lease, seconds.")
@click.option(
    "--concurrency", type=int, default=4, show_default=True, help="Merchants exported at once."
)
@click.option(
    "--event-wait",
    type=float,
    default=5.0,
    show_default=True,
    help="Long-poll seconds per events() call.",
)
@click.option("--no-export", is_flag=True, help="Run the listeners only.")
@click.option("--no-listen", is_flag=True, help="Run the export job only.")
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep Prometheus text in this file.",
)
@click.option(
    "--http-port",
    "--metrics-port",
    "http_port",
    type=click.IntRange(0, 65535),
    help="Serve /healthz, /readyz and /metrics on this port (0: any free one).",
)
@click.option(
    "--http-host",
    default="127.0.0.1",
    show_default=True,
    help="Address of the health and metrics server (0.0.0.0: every interface).",
)
@click.option(
    "--listener-lease",
    type=click.FloatRange(min=0.5),
    default=15.0,
    show_default=True,
    help="Listener lease, seconds: a dead worker's listeners move to another within it.",
)
@click.option(
    "--listener-threads",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Threads reading the held listeners' feeds (not one per merchant).",
)
@click.option(
    "--checkpoint-interval",
    type=click.FloatRange(min=0, max=60),
    default=0.25,
    show_default=True,
    help="Seconds the listeners' checkpoints may wait to be stored together in one "
    "transaction (0: each at once; a crash in between hands those events over again).",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds a stop waits for the work in flight before exiting anyway.",
)
@click.option("--log-json", is_flag=True, help="Log one JSON object per line.")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
    default="INFO",
    show_default=True,
)
def worker(
    config_file: Path,
    interval: float,
    lease: float,
    concurrency: int,
    event_wait: float,
    no_export: bool,
    no_listen: bool,
    metrics_file: Path | None,
    http_port: int | None,
    http_host: str,
    listener_lease: float,
    listener_threads: int,
    checkpoint_interval: float,
    grace: float,
    log_json: bool,
    log_level: str,
) -> None:
    """Run the export job and the event listeners of every merchant until SIGTERM or Ctrl-C.

    \b
    Example:
      omsbridge worker --config omsbridge.toml --http-port 9464 --log-json
    """
    from omsbridge.bridge import Bridge
    from omsbridge.errors import ConfigError
    from omsbridge.export import ExportSettings
    from omsbridge.listen import ListenerSettings, PoolSettings
    from omsbridge.logs import configure_logging
    from omsbridge.worker import Worker, WorkerSettings

    configure_logging(getattr(logging, log_level), json_lines=log_json)
    quiet_http_logs()
    try:
        bridge = Bridge.from_config(config_file)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from None
    settings = WorkerSettings(
        export=not no_export,
        listen=not no_listen,
        export_interval=interval,
        export_settings=ExportSettings(lease_seconds=lease, concurrency=concurrency),
        listener_settings=ListenerSettings(wait=event_wait),
        metrics_file=metrics_file,
        http_host=http_host,
        http_port=http_port,
        pool=PoolSettings(
            threads=listener_threads,
            lease_seconds=listener_lease,
            commit_interval=checkpoint_interval,
        ),
        grace_seconds=grace,
    )
    with bridge:
        runner = Worker(bridge, settings)
        runner.install_signal_handlers()
        runner.run()


def quiet_http_logs() -> None:
    """HTTP clients' per-request lines (httpx logs every request at INFO) only at DEBUG: a
    worker at INFO would otherwise log each call it makes, thousands an hour."""
    root = logging.getLogger().getEffectiveLevel()
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(
            logging.DEBUG if root <= logging.DEBUG else logging.WARNING
        )
