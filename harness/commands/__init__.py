"""The ``adtiers`` subcommands, one module each, registered in ``harness.cli.COMMANDS``."""
