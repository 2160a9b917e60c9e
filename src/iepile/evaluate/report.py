"""A self-contained HTML report (no scripts, no external files): summary, per-type F1 bars, error counts,
top confusions and examples of each error kind with the predicted and gold spans highlighted in the text."""

from __future__ import annotations

from html import escape

from iepile.evaluate.errors import KINDS
from iepile.fileio import write_text_atomic

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child{text-align:left}.bar{background:#4a7bd0;height:11px;display:inline-block}
.barcell{width:260px;text-align:left}.ex{border:1px solid #ddd;border-radius:4px;padding:6px 10px;margin:6px 0}
.g{background:#b8e6b8}.p{background:#f5c0c0}.g.p{background:#f3e28a}.k{color:#666;font-size:12px}
h2{border-bottom:2px solid #4a7bd0;padding-bottom:2px}code{background:#f4f4f4;padding:0 3px}
"""


def write_report(result: dict, path: str) -> None:
    write_text_atomic(path, render_report(result))


def render_report(result: dict) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>iepile eval</title><style>{_CSS}</style>"
             "</head><body>", _header(result), _summary(result)]
    for task, task_result in result["tasks"].items():
        for level, row in task_result["levels"].items():
            parts.append(_level(task, level, row))
        parts.append(_failures(task, task_result))
    parts.append("</body></html>")
    return "\n".join(parts)


def _header(result: dict) -> str:
    parse = result["parse"]
    return (f"<h1>iepile eval</h1><p><b>{escape(result['file'] or 'predictions')}</b>: {result['records']} records, "
            f"{result['lines']} lines.<br>Mode <code>{escape(result['mode'])}</code>: "
            f"{escape(result['mode_description'])}.<br>Parsing {escape(result['parsing'])}: {parse['clean']} clean, "
            f"{parse['repaired']} repaired, {parse['failed']} failed; {parse['off_schema_keys']} off-schema keys.</p>"
            "<p class='k'>Highlights: <span class='g'>gold</span> <span class='p'>predicted</span> "
            "<span class='g p'>both</span></p>")


def _summary(result: dict) -> str:
    rows = "".join(f"<tr><td>{escape(task)}</td><td>{escape(str(level))}</td><td>{row['precision']:.2f}</td>"
                   f"<td>{row['recall']:.2f}</td><td>{row['f1']:.2f}</td><td>{row['macro_type']['f1']:.2f}</td>"
                   f"<td>{row['tp']}</td><td>{row['pred']}</td><td>{row['gold']}</td></tr>"
                   for task, task_result in result["tasks"].items() for level, row in task_result["levels"].items())
    return ("<h2>Summary (micro)</h2><table><tr><th>task</th><th>level</th><th>P</th><th>R</th><th>F1</th>"
            f"<th>macro-F1 (types)</th><th>tp</th><th>pred</th><th>gold</th></tr>{rows}</table>")


def _level(task: str, level: str, row: dict) -> str:
    parts = [f"<h2>{escape(task)} — {escape(level)}</h2>", _bars("F1 per type", row["by_type"]),
             _bars("F1 per source", row["by_source"]), _errors(row), _confusions(row)]
    for kind in KINDS:
        examples = row["examples"].get(kind)
        if examples:
            parts.append(f"<h3>{escape(kind.replace('_', ' '))} ({row['errors'][kind]})</h3>")
            parts.extend(_example(example) for example in examples)
    return "\n".join(parts)


def _bars(title: str, rows: dict) -> str:
    if not rows:
        return ""
    body = "".join(f"<tr><td>{escape(name)}</td><td class='barcell'><span class='bar' style='width:"
                   f"{max(0.0, min(100.0, r['f1'])) * 2.5:.1f}px'></span></td><td>{r['f1']:.2f}</td>"
                   f"<td>{r['precision']:.2f}</td><td>{r['recall']:.2f}</td><td>{r['gold']}</td></tr>"
                   for name, r in rows.items())
    return (f"<h3>{escape(title)}</h3><table><tr><th></th><th></th><th>F1</th><th>P</th><th>R</th><th>gold</th>"
            f"</tr>{body}</table>")


def _errors(row: dict) -> str:
    header = "".join(f"<th>{escape(kind.replace('_', ' '))}</th>" for kind in KINDS)
    cells = "".join(f"<td>{row['errors'][kind]}</td>" for kind in KINDS)
    return f"<h3>Error kinds</h3><table><tr>{header}</tr><tr>{cells}</tr></table>"


def _confusions(row: dict) -> str:
    if not row["top_confusions"]:
        return ""
    body = "".join(f"<tr><td>{escape(gold)}</td><td>{escape(pred)}</td><td>{n}</td></tr>"
                   for gold, pred, n in row["top_confusions"])
    return f"<h3>Top type confusions</h3><table><tr><th>gold</th><th>predicted</th><th>n</th></tr>{body}</table>"


def _example(example: dict) -> str:
    pred, gold = example.get("pred"), example.get("gold")
    spans = {"p": _spans(pred), "g": _spans(gold)}
    return (f"<div class='ex'>{_highlight(example['text'], spans)}<div class='k'>source {escape(example['source'])}"
            f" · predicted {escape(_show(pred))} · gold {escape(_show(gold))}</div></div>")


def _spans(item) -> list[str]:
    return [value for value in (item or [])[1:] if isinstance(value, str) and value]


def _show(item) -> str:
    if not item:
        return "—"
    return " | ".join(" / ".join(v) if isinstance(v, (list, tuple)) else str(v) for v in item)


def _highlight(text: str, spans: dict[str, list[str]]) -> str:
    """Mark the first occurrence of every span; overlapping gold and predicted spans get both classes."""
    marks = [set() for _ in text]
    for css, values in spans.items():
        for value in values:
            start = text.find(value)
            for index in range(start, start + len(value) if start >= 0 else start):
                marks[index].add(css)
    out, run, current = [], [], frozenset()
    for char, classes in zip(text, marks):
        if frozenset(classes) != current:
            out.append(_run("".join(run), current))
            run, current = [], frozenset(classes)
        run.append(char)
    out.append(_run("".join(run), current))
    return "".join(out)


def _run(chunk: str, classes: frozenset) -> str:
    if not chunk:
        return ""
    return f"<span class='{' '.join(sorted(classes))}'>{escape(chunk)}</span>" if classes else escape(chunk)


def _failures(task: str, task_result: dict) -> str:
    failures = task_result.get("parse_failures") or []
    if not failures:
        return ""
    body = "".join(f"<div class='ex'><code>{escape(f['output'])}</code><div class='k'>source "
                   f"{escape(f['source'])}</div></div>" for f in failures)
    return f"<h2>{escape(task)} — unparseable answers ({task_result['parse']['failed']})</h2>{body}"
