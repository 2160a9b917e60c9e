"""iepile inside other libraries' pipelines: a spaCy component (``spacy_component.py``)."""
