"""The `rnn-tui` subcommands: each module has `add_parser(subparsers)` and `run(args) -> int`.

Modules import nothing heavy at import time; torch loads inside `run`.
"""
