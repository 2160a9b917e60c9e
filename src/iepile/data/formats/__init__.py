"""Dataset readers: one module per source format, all producing unified raw records (see ``iepile.records``).

``READERS`` maps a format name to its module; a module exposes ``TASKS`` (the first is the default task) and
``read(path, opts, stats)``. ``import_file`` runs a reader, applies an optional label map, writes the records as JSON
lines and the 3-line schema file, and returns the reader's statistics.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Iterable, Iterator, Optional

from iepile.fileio import atomic_output, naming_outputs, refuse_input_as_output
from iepile.data.formats.base import ReadOptions, ReadStats
from iepile.records import dumps
from iepile.schema import Schema
from iepile.tasks.base import LabelsSeen

READERS = {
    "conll": "conll", "bio": "conll", "bmes": "conll", "bioes": "conll",
    "spert": "spert",
    "triples": "triples",
    "opennre": "opennre",
    "pair-tsv": "pair_tsv",
    "spo-list": "spo_list",
    "duee": "duee",
    "fewfc": "fewfc",
    "phee": "phee",
    "casie": "casie",
    "rams": "rams",
    "wikievents": "wikievents",
    "fewrel": "fewrel",
    "brat": "brat",
    "doccano": "doccano",
    "label-studio": "label_studio",
    "prodigy": "prodigy",
    "spacy": "spacy_docs",
}

FORMATS = sorted(set(READERS) - {"bio", "bmes", "bioes"})


class FormatError(ValueError):
    pass


def get_reader(name: str) -> ModuleType:
    if name not in READERS:
        raise FormatError(f"unknown format {name!r}; choose one of: {', '.join(FORMATS)}")
    return importlib.import_module(f"iepile.data.formats.{READERS[name]}")


def resolve_task(reader: ModuleType, task: Optional[str], name: str) -> str:
    task = (task or reader.TASKS[0]).upper()
    if task not in reader.TASKS:
        raise FormatError(f"format {name!r} produces {', '.join(reader.TASKS)} records, not {task}")
    return task


def read_records(path: str | Path, fmt: str, opts: ReadOptions, stats: ReadStats) -> Iterator[dict]:
    """Records of one file, counted into ``stats`` (with ``opts.task`` resolved to the format's default)."""
    reader = get_reader(fmt)
    opts.validate()
    opts.task = resolve_task(reader, opts.task, fmt)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: input file not found")
    stats.path, stats.on_error = str(path), opts.on_error
    for rec in reader.read(path, opts, stats):
        stats.count(rec)
        yield rec


# ---------------------------------------------------------------------------------------------------------------
# Label maps and schema collection


def check_label_map(mapping: object, where: str = "--label-map") -> dict[str, str]:
    """A label map renames labels to labels: a value that is not a non-empty string (``{"person": 5}``) would be
    written as a label of another type, or an empty one."""
    if not isinstance(mapping, dict):
        raise FormatError(f"{where}: expected a JSON/YAML mapping of labels to new labels, got "
                          f"{type(mapping).__name__}")
    for old, new in mapping.items():
        if not isinstance(old, str) or not isinstance(new, str) or not new.strip():
            raise FormatError(f"{where}: {old!r} maps to {new!r}; labels map to non-empty label strings, e.g. "
                              '\'{"PER.NAM": "person"}\'')
    return mapping


def map_labels(rec: dict, mapping: dict[str, str]) -> dict:
    """Rename types, relations, event types and roles (``{"PER.NAM": "person"}``); unmapped labels stay."""
    if not mapping:
        return rec
    get = lambda value: mapping.get(value, value)  # noqa: E731
    for item in rec.get("entity") or ():
        item["entity_type"] = get(item["entity_type"])
    for item in rec.get("relation") or ():
        item["relation"] = get(item["relation"])
        for key in ("head_type", "tail_type"):
            if key in item:
                item[key] = get(item[key])
    for item in rec.get("event") or ():
        item["event_type"] = get(item["event_type"])
        for arg in item.get("arguments") or ():
            arg["role"] = get(arg["role"])
    return rec


class SchemaCollector:
    """Builds the schema of a task from the records seen (sorted labels, so that every split of a dataset yields
    the same schema), after the labels a reader declared (e.g. DuEE's ``event_schema.json``, kept in file order);
    which labels make the schema is the task's :meth:`~iepile.tasks.base.Task.collect_schema`."""

    def __init__(self, task: str, declared: Optional[Schema] = None):
        from iepile.tasks import get_task

        self.task = get_task(task)
        self.declared = declared
        self.seen = LabelsSeen()

    def add(self, rec: dict) -> None:
        self.seen.add(rec)

    def add_all(self, records: Iterable[dict]) -> Iterator[dict]:
        for rec in records:
            self.add(rec)
            yield rec

    def schema(self) -> Schema:
        return self.task.collect_schema(self.seen, self.declared or Schema())

    def undeclared(self) -> list[str]:
        """Labels found in records but missing from the declared schema (reported, never dropped)."""
        if self.declared is None:
            return []
        schema, declared = self.schema(), self.declared
        known = set(declared.type_list) | set(declared.role_list) | set(declared.type_role_dict)
        found = set(schema.type_list) | set(schema.role_list) | set(schema.type_role_dict)
        return sorted(found - known)


# ---------------------------------------------------------------------------------------------------------------
# import


def schema_path_for(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name.rsplit(".", 1)[0] + ".schema.json") if "." in out.name \
        else out.with_name(out.name + ".schema.json")


def import_file(src: str | Path, out: str | Path, fmt: str, opts: Optional[ReadOptions] = None,
                schema_out: Optional[str | Path] = None, label_map: Optional[dict] = None) -> dict:
    """Read ``src`` in format ``fmt`` and write unified records to ``out`` and the schema file next to it.

    Returns the statistics (records, labels, skipped items with reasons, repairs, examples, schema sizes)."""
    refuse_input_as_output(out, src)
    refuse_input_as_output(schema_out, src)
    opts = opts or ReadOptions()
    stats = ReadStats()
    records = read_records(src, fmt, opts, stats)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    collector: Optional[SchemaCollector] = None
    schema_file = Path(schema_out) if schema_out else schema_path_for(out)
    # both files appear only when the whole input was read: a failure leaves a previous output as it was
    with naming_outputs(out, schema_file), atomic_output(out) as tmp, \
            open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        for rec in records:
            if collector is None:
                collector = SchemaCollector(opts.task, stats.declared_schema)
            rec = map_labels(rec, label_map or {})
            collector.add(rec)
            handle.write(dumps(rec) + "\n")
        collector = collector or SchemaCollector(opts.task, stats.declared_schema)
        schema = collector.schema()
        with atomic_output(schema_file) as schema_tmp:
            schema_tmp.write_text(schema.to_lines(), encoding="utf-8")
    result = stats.to_dict()
    result.update(format=fmt, task=opts.task, output=str(out), schema=str(schema_file),
                  schema_sizes=[len(schema.type_list), len(schema.role_list), len(schema.type_role_dict)],
                  undeclared_labels=collector.undeclared())
    return result
