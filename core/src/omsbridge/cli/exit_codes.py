"""The exit statuses of every ``omsbridge`` command: the one table scripts can rely on.

2 stays click's usage error (a typo in the command line); "try again later" has its own
status, 75, which is ``EX_TEMPFAIL`` of BSD's sysexits.h, what mail transfer agents and
schedulers already read as "temporary failure, retry".
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["EXIT_CODES_HELP", "ExitCode"]


class ExitCode(IntEnum):
    """What an ``omsbridge`` command's exit status means."""

    OK = 0
    """Done."""
    FIX = 1
    """An error to fix before trying again: bad input, a config error, a refusal by the OMS."""
    USAGE = 2
    """The command line is wrong (unknown option, missing argument): click's usage error."""
    QUEUED = 3
    """``post``: the OMS could not take the transaction now; it waits in the outbox and the
    export job will post it. Nothing for the caller to do."""
    RETRY = 75
    """A temporary failure (OMS unavailable, timeout, rate limit): the same command may work
    later (``EX_TEMPFAIL``)."""


_MEANINGS = {
    ExitCode.OK: "success",
    ExitCode.FIX: "error to fix (bad input, config, refused by the OMS)",
    ExitCode.USAGE: "usage error in the command line",
    ExitCode.QUEUED: "post: queued in the outbox; the export job will post it",
    ExitCode.RETRY: "temporary failure: try the same command again later (EX_TEMPFAIL)",
}

EXIT_CODES_HELP = "\b\nExit status:\n" + "\n".join(
    f"  {int(code):<3} {meaning}" for code, meaning in _MEANINGS.items()
)
"""The table as ``omsbridge --help`` prints it (``\\b``: click keeps the lines as they are)."""
