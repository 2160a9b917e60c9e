"""Stage 2, records to instructions: negative sampling, the hard-negative dictionary and ``split_num`` groups
(``sampling.py``) and the streaming parallel converter (``converter.py``).

``iepile.convert(records, ...)`` is the in-memory function; ``convert_file(src, dst, ConvertOptions(...))`` the
streaming stage behind ``iepile convert``."""

from iepile.convert.converter import ConvertOptions, convert, convert_file

__all__ = ["ConvertOptions", "convert", "convert_file"]
