"""The ``hsbench`` command line: one module per sub-command (:data:`hsbench.cli.main.COMMANDS`)."""

from hsbench.cli.main import COMMANDS, EXIT_PIPE_CLOSED, build_parser, main

__all__ = ["COMMANDS", "EXIT_PIPE_CLOSED", "build_parser", "main"]
