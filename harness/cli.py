"""The ``adtiers`` command line.

Each subcommand lives in its own module with a ``register(subparsers)`` function; ``COMMANDS``
lists those modules in the order ``adtiers --help`` shows them.
Exit codes: 0 success, 1 a check or gate failed, 2 bad input (unknown names, malformed values).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from harness.selection import UsageError

COMMANDS = [
    "harness.listing",
    "harness.check",
    "harness.bench",
    "harness.compare_cmd",
    "harness.stability",
    "harness.report_cmd",
    "harness.show",
    "harness.probe_cmd",
    "harness.fit_cmd",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adtiers", description="Benchmark reverse-mode AD engines, tier by tier."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as err:
        print(f"adtiers {args.command}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
