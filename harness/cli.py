"""The ``adtiers`` command line.

Each subcommand lives in its own module with a ``register(subparsers)`` function; ``COMMANDS``
lists those modules in the order ``adtiers --help`` shows them.

Exit codes: 0 success, 1 a check or gate failed, 2 bad input (unknown names, malformed values, a
results file that cannot be read or written: ``UsageError`` and ``ResultsError``, printed as one
line naming what was wrong and what is accepted), 130 interrupted (Ctrl-C), 141 the reader of
stdout went away (``adtiers list | head -1``).

**A closed pipe.** When the reader of our output exits early, the next write raises
BrokenPipeError. That is no error of ours, so there is no traceback: stdout is pointed at
``/dev/null`` (else the interpreter's final flush would raise again and print "Exception ignored")
and the exit code is 141, 128 + SIGPIPE, what a Unix tool killed by the signal reports (``yes | head``).
It is not 0 because the output was cut short, and a bench stopped this way did not complete: with
``set -o pipefail`` a script sees that, without it the shell reports ``head``'s status as usual.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from harness.results import ResultsError
from harness.selection import UsageError

COMMANDS = [
    "harness.commands.listing",
    "harness.commands.check",
    "harness.commands.bench",
    "harness.commands.compare",
    "harness.commands.stability",
    "harness.commands.report",
    "harness.commands.show",
    "harness.commands.probe",
    "harness.commands.fit",
]

BROKEN_PIPE = 141
"""128 + SIGPIPE: the exit code of a command whose reader closed the pipe (module docstring)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adtiers", description="Benchmark reverse-mode AD engines, tier by tier."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        try:
            code = args.func(args)
        except (UsageError, ResultsError) as err:
            print(f"adtiers {args.command}: {err}", file=sys.stderr)
            code = 2
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            code = 130
        sys.stdout.flush()  # here, so that a closed pipe is seen now and not at the interpreter's exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return BROKEN_PIPE


def _silence_stdout() -> None:
    """Send what is left of stdout to /dev/null, so that the final flush cannot raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (a test's capture): nothing to flush
        pass


if __name__ == "__main__":
    sys.exit(main())
