"""The ``iepile`` command line: one typer app; each command parses options and calls one library function.

One module per command group (``COMMAND_MODULES``), each exposing ``register(app)``; heavy libraries (torch,
transformers) are imported inside the command functions so that ``iepile --help`` and ``iepile convert`` start fast.
"""

from __future__ import annotations

import importlib

import typer

COMMAND_MODULES = ("convert", "data", "eval", "predict", "reproduce", "serve", "train")

app = typer.Typer(
    name="iepile",
    help="Schema-based information extraction with LLMs: import, clean, convert, train, predict, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    """Schema-based information extraction with LLMs."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"iepile.cli.{_name}").register(app)


def main() -> None:
    app()
