"""``iepile serve``: the :class:`~iepile.inference.extract.Extractor` behind an HTTP API and a web page.

``options.py`` (every setting and bound), ``batcher.py`` (requests arriving together answered in one generation
batch), ``app.py`` (the FastAPI routes: ``/v1/extract``, a GLiNER-compatible ``/v1/gliner``, ``/v1/health``,
``/v1/info``, the page at ``/``), ``page.html`` (the page: no CDN, no build step).
"""
