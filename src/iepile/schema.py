"""Schema files: the reference's 3-line ``schema.json`` and one friendlier single-document JSON/YAML form.

The 3-line file holds ``type_list`` (line 1), ``role_list`` (line 2) and ``type_role_dict`` (line 3), each a JSON value.
Unlike the reference we keep every collection as an ordered, de-duplicated list (never a set), so that what follows
from a schema never depends on ``PYTHONHASHSEED``.

Friendly form (JSON or YAML, one document); every section optional, each label may carry a description:

    entities:  {person: "a human being", location: null}       # NER types
    relations: {founded by: "organisation → founder"}          # RE relation names
    spo: ["person_born in_place", {subject_type: ..., predicate: ..., object_type: ...}]
    events:    {Attack: {description: "...", roles: [attacker, target]}, Meet: [entity, place]}
    kg:        {人物: [别名, 父母]}                                  # entity type → attributes
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from iepile.fileio import load_yaml



class SchemaError(ValueError):
    pass


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def require_names(labels: Any, where: str) -> list[str]:
    """Labels must be non-empty strings: an empty label would be asked in every prompt and taught as a key."""
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise SchemaError(f"{where}: every label must be a string")
    for position, label in enumerate(labels):
        if not label.strip():
            raise SchemaError(f"{where}: label {position + 1} is empty (every label needs a name)")
    return labels


@dataclass
class Schema:
    """Ordered label sets of one dataset. ``descriptions`` maps a label to its natural-language description."""

    type_list: list[str] = field(default_factory=list)
    role_list: list[str] = field(default_factory=list)
    type_role_dict: dict[str, list[str]] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    #: the sections of a friendly file (``entities``, ``events``...); None for the 3-line form and inline labels
    sections: Optional[tuple[str, ...]] = field(default=None, compare=False)

    def __post_init__(self) -> None:
        self.type_list = _unique(self.type_list)
        self.role_list = _unique(self.role_list)
        self.type_role_dict = {t: _unique(roles) for t, roles in self.type_role_dict.items()}

    def memo(self, key: str, compute):
        """Derived values (label sets for membership tests) computed once per schema, not once per record."""
        cache = self.__dict__.get("_memo")
        if cache is None:
            cache = self.__dict__["_memo"] = {}
        value = cache.get(key)
        if value is None:
            value = cache[key] = compute()
        return value

    def to_lines(self) -> str:
        """The reference's 3-line file (with a trailing newline)."""
        return "\n".join(json.dumps(v, ensure_ascii=False) for v in
                         (self.type_list, self.role_list, self.type_role_dict)) + "\n"

    def digest(self) -> str:
        return hashlib.sha256(self.to_lines().encode()).hexdigest()


def join_spo(subject_type: object, predicate: str, object_type: object) -> str:
    """The SPO label ``subjecttype_predicate_objecttype`` (the inverse of :func:`split_spo`); a missing type is
    written as an empty string."""
    return f"{subject_type or ''}_{predicate}_{object_type or ''}"


def spo_item_label(item: dict) -> str:
    """The SPO label of a schema item ``{subject_type, predicate, object_type}``."""
    return join_spo(item.get("subject_type"), item["predicate"], item.get("object_type"))


def split_spo(label: str) -> tuple[str, str, str]:
    """``subject_predicate_object`` → parts; the predicate may itself contain ``_`` (types may not)."""
    parts = label.split("_")
    if len(parts) < 3:
        raise SchemaError(f"SPO label {label!r} is not of the form subject-type_predicate_object-type")
    return parts[0], "_".join(parts[1:-1]), parts[-1]


def parse_three_lines(text: str, path: str = "<schema>") -> Schema:
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 3:
        raise SchemaError(f"{path}: a 3-line schema file needs exactly 3 non-empty lines "
                          f"(type_list, role_list, type_role_dict), found {len(lines)}")
    values = []
    for number, (line, expected, name) in enumerate(
            zip(lines, (list, list, dict), ("type_list", "role_list", "type_role_dict")), start=1):
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            raise SchemaError(f"{path}:{number}: {name}: malformed JSON ({err})") from None
        if not isinstance(value, expected):
            raise SchemaError(f"{path}:{number}: {name}: expected a JSON {expected.__name__}")
        values.append(value)
    type_list, role_list, type_role_dict = values
    require_names(type_list, f"{path}:1: type_list")
    require_names(role_list, f"{path}:2: role_list")
    require_names(list(type_role_dict), f"{path}:3: type_role_dict")
    for key, roles in type_role_dict.items():
        require_names(roles, f"{path}:3: type_role_dict[{key!r}]")
    return Schema(type_list, role_list, type_role_dict)


def _labels_with_descriptions(section: Any, where: str, descriptions: dict[str, str]) -> list[str]:
    if isinstance(section, list):
        labels = section
    elif isinstance(section, dict):
        labels = list(section)
        for label, value in section.items():
            if isinstance(value, str):
                descriptions[label] = value
            elif isinstance(value, dict) and isinstance(value.get("description"), str):
                descriptions[label] = value["description"]
    else:
        raise SchemaError(f"{where}: expected a list or a mapping of labels")
    return require_names(labels, where)


def _roles_of(value: Any, where: str) -> list[str]:
    roles = value.get("roles", []) if isinstance(value, dict) else (value or [])
    return require_names(roles, f"{where}: roles")


SECTIONS = ("entities", "relations", "spo", "events", "kg")


def parse_friendly(doc: Any, path: str = "<schema>") -> Schema:
    if not isinstance(doc, dict):
        raise SchemaError(f"{path}: a schema document must be a mapping")
    unknown = set(doc) - {*SECTIONS, "task", "language"}
    if unknown:
        raise SchemaError(f"{path}: unknown section(s) {sorted(unknown)}; "
                          "expected entities, relations, spo, events or kg")
    descriptions: dict[str, str] = {}
    type_list: list[str] = []
    role_list: list[str] = []
    type_role_dict: dict[str, list[str]] = {}
    if "entities" in doc:
        type_list += _labels_with_descriptions(doc["entities"], f"{path}: entities", descriptions)
    if "relations" in doc:
        role_list += _labels_with_descriptions(doc["relations"], f"{path}: relations", descriptions)
    for item in doc.get("spo", []) or []:
        if isinstance(item, dict):
            try:
                label = join_spo(item["subject_type"], item["predicate"], item["object_type"])
            except KeyError as err:
                raise SchemaError(f"{path}: spo: item lacks {err}") from None
        else:
            label = item
        split_spo(label)
        type_list.append(label)
        role_list.append(split_spo(label)[1])
    if "events" in doc:
        events = doc["events"]
        for event_type in _labels_with_descriptions(events, f"{path}: events", descriptions):
            value = events.get(event_type) if isinstance(events, dict) else None
            roles = _roles_of(value, f"{path}: events.{event_type}")
            type_list.append(event_type)
            type_role_dict[event_type] = roles
            role_list += roles
    if "kg" in doc:
        kg = doc["kg"]
        if not isinstance(kg, dict):
            raise SchemaError(f"{path}: kg: expected a mapping entity type → attributes")
        require_names(list(kg), f"{path}: kg")
        for entity_type, value in kg.items():
            attributes = _roles_of(value, f"{path}: kg.{entity_type}")
            type_role_dict[entity_type] = attributes
            role_list += attributes
    return Schema(type_list, role_list, type_role_dict, descriptions, tuple(k for k in doc if k in SECTIONS))


def load_schema(path: Optional[str | Path]) -> Schema:
    """Read a schema file in either form. A missing path is an error (the reference silently used empty sets)."""
    if path is None:
        return Schema()
    path = Path(path)
    if not path.exists():
        raise SchemaError(f"{path}: schema file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise SchemaError(f"{path}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
    if path.suffix in (".yaml", ".yml"):
        return parse_friendly(load_yaml(text, str(path)), str(path))
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        if text.lstrip().startswith("{"):  # one JSON document (the friendly form) with a syntax error
            raise SchemaError(f"{path}:{err.lineno}: malformed JSON ({err.msg} at column {err.colno})") from None
        return parse_three_lines(text, str(path))  # three JSON values, one per line
    return parse_friendly(doc, str(path))
