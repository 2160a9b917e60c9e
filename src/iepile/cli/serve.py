"""``iepile serve``: the extractor behind an HTTP API and a web page (FastAPI + uvicorn, one process)."""

from __future__ import annotations

import typer

from iepile.cli.console import print_error


def register(app: typer.Typer) -> None:
    from iepile.config import typer_command
    from iepile.serve.options import ServeOptions

    app.command("serve")(typer_command(ServeOptions, run_serve, doc=run_serve.__doc__))


def run_serve(options) -> None:
    """Serve extraction over HTTP: POST /v1/extract, a GLiNER-compatible /v1/gliner, /v1/info, and a page at /."""
    from rich.console import Console

    from iepile.cli.predict import warn_if_untrained

    console = Console(stderr=True)
    try:
        options.validate()
        import uvicorn

        from iepile.inference.extract import Extractor
        from iepile.serve.app import create_app

        warn_if_untrained(options.model, options.adapter, console)
        extractor = Extractor(options=options)
        extractor.generator  # load the model before the first request, so that a bad --model fails here
    except (ValueError, OSError, ImportError) as err:
        print_error(console, err)
        raise typer.Exit(1) from None
    console.print(f"serving on http://{options.host}:{options.port}/ (API docs at /docs)")
    uvicorn.run(create_app(extractor, options), host=options.host, port=options.port, log_level="info")
