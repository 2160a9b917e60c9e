"""The ``iepile`` command line: one typer app; each command parses options and calls one library function.

Commands live in ``iepile/commands/<name>.py``, each exposing ``register(app)``; heavy libraries (torch,
transformers) are imported inside the command functions so that ``iepile --help`` and ``iepile convert`` start fast.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

import iepile.commands

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


def _register_commands() -> None:
    for module_info in sorted(pkgutil.iter_modules(iepile.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"iepile.commands.{module_info.name}")
        module.register(app)


_register_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
