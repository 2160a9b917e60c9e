"""Label Studio's ML-backend protocol on ``iepile serve``: a Label Studio project pointed at the service (Settings →
Model → Connect model, URL of the service) gets the model's entities as pre-annotations as annotators open tasks.

``GET /health`` → ``{"status": "UP"}``; ``POST /setup`` (``{"project", "schema": label config XML}``) →
``{"model_version"}``; ``POST /predict`` (``{"tasks": [...], "label_config": XML}``) → ``{"results": [{"result",
"score", "model_version"}]}``, one per task, in order. The schema is the ``<Labels>`` of the label config (its
``name`` and ``toName`` become the regions' ``from_name``/``to_name``; the text is the task's data field the
``<Text>`` tag names); results are Label Studio regions written by :func:`iepile.data.formats.label_studio.write`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass


@dataclass
class LabelConfig:
    from_name: str
    to_name: str
    data_key: str
    labels: list[str]


def parse_label_config(xml: str) -> LabelConfig:
    """The first ``<Labels>`` of a label config and the ``<Text>`` it labels; a ValueError says what is missing."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as error:
        raise ValueError(f"label_config: not XML ({error})") from None
    labels = next(root.iter("Labels"), None)
    if labels is None or not labels.get("name") or not labels.get("toName"):
        raise ValueError("label_config: no <Labels name=... toName=...> (iepile pre-annotates text spans)")
    values = [label.get("value") for label in labels.iter("Label") if label.get("value")]
    if not values:
        raise ValueError("label_config: the <Labels> has no <Label value=...>")
    text = next((t for t in root.iter("Text") if t.get("name") == labels.get("toName")), None)
    if text is None or not str(text.get("value", "")).startswith("$"):
        raise ValueError(f"label_config: no <Text name=\"{labels.get('toName')}\" value=\"$field\">")
    return LabelConfig(labels.get("name"), labels.get("toName"), text.get("value")[1:], values)


def predictions(results, config: LabelConfig, model_version: str) -> list[dict]:
    """One Label Studio prediction per extraction result."""
    from iepile.data.formats.label_studio import write
    from iepile.inference.exports import results_to_records

    tasks = write(results_to_records(results, "NER"), "NER", model_version=model_version,
                  from_name=config.from_name, to_name=config.to_name)
    return [task["predictions"][0] for task in tasks]
