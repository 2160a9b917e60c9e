"""A spaCy pipeline component that runs the :class:`~iepile.inference.extract.Extractor` with a schema from its
config: ``nlp = spacy.blank("en"); nlp.add_pipe("iepile", config={"labels": ["person", "location"]})``.

Registered through the ``spacy_factories`` entry point (as spacy-transformers and spacy-llm register theirs), so
spaCy finds it without an import. Spans are placed as ``iepile extract --format spacy`` places them
(:mod:`iepile.inference.exports`, :func:`iepile.data.formats.spacy_docs.doc_spans`): every grounded occurrence of an
entity, relation heads and tails, event arguments in ``doc.spans[spans_key]`` (overlaps allowed), event triggers in
``doc.spans[spans_key + "_triggers"]``; for NER the longest non-overlapping entities are also ``doc.ents``.
Relations go to ``doc._.iepile_relations`` as ``(head span, relation, tail span)``, events to ``doc._.iepile_events``
as ``{"event_type", "trigger": span, "arguments": [(role, span)]}``, the merged answer and items (every task) to
``doc._.iepile``. Strings not found in the text get no span (they stay in ``doc._.iepile``); for the tasks without
a span shape (SPO, EEA, KG) every grounded answer string becomes a span labelled with its key.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Optional

from spacy.language import Language
from spacy.tokens import Doc

for _name, _default in (("iepile", None), ("iepile_relations", None), ("iepile_events", None)):
    if not Doc.has_extension(_name):
        Doc.set_extension(_name, default=_default)


@Language.factory("iepile", default_config={
    "task": "NER", "labels": [], "model": None, "adapter": None, "constrain": False, "threshold": None,
    "batch_size": 8, "max_new_tokens": 256, "dtype": "auto", "spans_key": "iepile"})
def make_iepile(nlp: Language, name: str, task: str, labels: list, model: Optional[str], adapter: Optional[str],
                constrain: bool, threshold: Optional[float], batch_size: int, max_new_tokens: int, dtype: str,
                spans_key: str) -> "IEPileComponent":
    from iepile.inference.extract import ExtractOptions

    options = ExtractOptions(model=model, adapter=adapter, constrain=constrain, threshold=threshold,
                             batch_size=batch_size, max_new_tokens=max_new_tokens, dtype=dtype)
    return IEPileComponent(nlp, name, task=task, labels=labels, spans_key=spans_key, options=options)


class IEPileComponent:
    def __init__(self, nlp: Language, name: str = "iepile", *, task: str = "NER", labels=None,
                 spans_key: str = "iepile", options=None, extractor=None):
        from iepile.inference.extract import Extractor

        if not labels:
            raise ValueError("the iepile component needs labels: add_pipe('iepile', config={'labels': [...]})")
        self.name, self.task, self.labels, self.spans_key = name, task.upper(), labels, spans_key
        self.extractor = extractor or Extractor(options=options)

    def __call__(self, doc: Doc) -> Doc:
        return next(iter(self.pipe([doc])))

    def pipe(self, docs: Iterable[Doc], batch_size: int = 32) -> Iterator[Doc]:
        """Docs in batches: all schema groups of a batch's texts run as one generation batch."""
        batch: list[Doc] = []
        for doc in docs:
            batch.append(doc)
            if len(batch) >= batch_size:
                yield from self._annotate(batch)
                batch = []
        if batch:
            yield from self._annotate(batch)

    def _annotate(self, docs: list[Doc]) -> Iterator[Doc]:
        results = self.extractor.extract_batch([doc.text for doc in docs], self.labels, task=self.task)
        for doc, result in zip(docs, results):
            self.set_annotations(doc, result)
            yield doc

    def set_annotations(self, doc: Doc, result) -> None:
        from iepile.data.formats.spacy_docs import doc_spans, set_spans
        from iepile.inference.exports import PLACED_TASKS, results_to_records

        doc._.iepile = result.to_dict()
        if self.task not in PLACED_TASKS:
            doc.spans[self.spans_key] = [span for item in result.items for grounding in item.spans
                                         for start, end in grounding["offsets"]
                                         if (span := doc.char_span(start, end, label=item.label,
                                                                   alignment_mode="expand")) is not None]
            return
        placed = doc_spans(doc, results_to_records([result], self.task)[0])
        set_spans(doc, placed, self.spans_key, ents=self.task == "NER")
        if self.task in ("RE", "SPO"):
            doc._.iepile_relations = placed["relations"]
        if self.task in ("EE", "EET"):
            doc._.iepile_events = placed["events"]
