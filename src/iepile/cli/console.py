"""What every command prints on failure."""


def print_error(console, err: object) -> None:
    """``error: message`` on one line: never wrapped at the terminal width (a path cut in two cannot be copied or
    grepped) and never read as rich markup (a path or a JSON excerpt may hold square brackets)."""
    from rich.markup import escape

    console.print(f"[bold red]error:[/] {escape(str(err))}", soft_wrap=True)
