"""The terminal view of a result document (rich tables): one row per task and level, then parsing and errors."""

from __future__ import annotations

from iepile.evaluate.errors import KINDS


def fmt(value: float) -> str:
    return f"{value:.2f}"


def print_result(result: dict, console, by_type: bool = False) -> None:
    from rich.table import Table

    console.print(f"[bold]mode[/] {result['mode']}: {result['mode_description']}; parsing {result['parsing']}")
    table = Table(title=f"{result['file'] or 'predictions'}: {result['records']} records, {result['lines']} lines")
    for column in ("task", "level", "P", "R", "F1", "tp", "pred", "gold", "macro-F1 (types)", "95% CI F1"):
        table.add_column(column, justify="left" if column in ("task", "level") else "right")
    for task, task_result in result["tasks"].items():
        for level, row in task_result["levels"].items():
            ci = row.get("ci95", {}).get("f1")
            table.add_row(task, level, fmt(row["precision"]), fmt(row["recall"]), fmt(row["f1"]), str(row["tp"]),
                          str(row["pred"]), str(row["gold"]), fmt(row["macro_type"]["f1"]),
                          f"{fmt(ci[0])}–{fmt(ci[1])}" if ci else "")
    console.print(table)
    print_parsing(result, console)
    print_errors(result, console)
    if by_type:
        print_types(result, console)


def print_parsing(result: dict, console) -> None:
    parse = result["parse"]
    line = (f"answers: {parse['clean']} clean, {parse['repaired']} repaired, {parse['failed']} failed"
            f"; {parse['off_schema_keys']} off-schema keys"
            + (" (ignored)" if result["ignore_off_schema"] else ""))
    if parse["repairable"]:
        line += f"; {parse['repairable']} failed answers would parse with --repair"
    if result["bad_lines"]:
        line += f"; [red]{len(result['bad_lines'])} malformed lines[/] (first: {result['bad_lines'][0]})"
    console.print(line)


def print_errors(result: dict, console) -> None:
    from rich.table import Table

    table = Table(title="error analysis (items)")
    table.add_column("task / level")
    for kind in KINDS:
        table.add_column(kind.replace("_", " "), justify="right")
    for task, task_result in result["tasks"].items():
        for level, row in task_result["levels"].items():
            table.add_row(f"{task} {level}", *(str(row["errors"][kind]) for kind in KINDS))
            for gold, pred, n in row["top_confusions"][:3]:
                cells = [str(n) if kind == "wrong_type" else "" for kind in KINDS]
                table.add_row(f"  gold {gold} → {pred}", *cells, style="dim")
    console.print(table)


def print_types(result: dict, console) -> None:
    from rich.table import Table

    table = Table(title="per type")
    for column in ("task", "level", "type", "P", "R", "F1", "tp", "pred", "gold"):
        table.add_column(column)
    for task, task_result in result["tasks"].items():
        for level, row in task_result["levels"].items():
            for label, values in row["by_type"].items():
                table.add_row(task, level, label, fmt(values["precision"]), fmt(values["recall"]),
                              fmt(values["f1"]), str(values["tp"]), str(values["pred"]), str(values["gold"]))
    console.print(table)
