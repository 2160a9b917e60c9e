"""Constrained decoding: every answer is a JSON object with exactly the asked schema keys, in order, whose values
have the task's shape and whose extracted strings are copied from the input text.

Why our own automaton instead of a JSON-schema library (xgrammar, outlines, lm-format-enforcer): "a substring of
this input" is not a JSON-schema type. Libraries would need an enum of every substring (quadratic) or a grammar
compiled per instruction (each instruction has its own text and keys), and compiling costs more than our whole
answer. Here the grammar is a handful of small nodes built per instruction in milliseconds, walked byte by byte.

How it stays cheap: decoding is greedy, so we do not need the full mask of allowed tokens, only the best allowed
one. We try the model's top-k tokens in order and keep the first the automaton accepts (usually the first one); only
if none fits do we scan every token whose first byte is allowed. That is exact for greedy decoding.

How it stays bounded: separators are exactly the converter's (``", "`` and ``": "``), so there is no free
whitespace; a list holds at most ``max_items`` (8) items and never repeats a string; a string is short (at most 8
words or 48 characters, whichever allows more); and when the token budget runs low (the closing counted in the tokens
of the tokenized shortest completion) the decoder only takes tokens on a shortest path to closing the object, so an answer never ends mid-JSON (every node's ``rest`` is exact or an upper
bound that drops by one along some byte, and every accepted byte leaves a state that can still close).

What a string may be (:class:`SpanRules`): besides being copied from the text, it must look like a span, because an
untrained or weak model otherwise fills lists with junk ("." "," and whole sentences): a letter, digit or CJK
character in its first and last word, no whitespace or separator at its edges, no start inside an ASCII token, no
sentence end inside it (abbreviations such as "U.S." and "F." excepted), and the length cap above. If nothing in
the text passes, the whole input is the one string allowed.

Strings are matched on UTF-8 bytes against the text (byte-level BPE tokens can split a Chinese character), start
and end on character boundaries, and are written with JSON escapes where the text has ``"``, ``\\`` or control
characters. ``"NAN"`` is allowed where the converter writes it (EE/EEA arguments, EE triggers).
"""

from __future__ import annotations

from iepile.inference.constrain.grammar import (AnswerParts, accepts, advance, advance_bytes, bytes_to_close, grammar_for,
                                                grammar_for_instruction)
from iepile.inference.constrain.nodes import Node
from iepile.inference.constrain.processor import ConstrainedLogitsProcessor, JsonConstraint, constraints_for
from iepile.inference.constrain.spans import MAX_CHARS, MAX_ITEMS, MAX_WORDS, SpanRules, TextIndex
from iepile.inference.constrain.vocabulary import Vocabulary, vocabulary

__all__ = ["AnswerParts", "ConstrainedLogitsProcessor", "JsonConstraint", "MAX_CHARS", "MAX_ITEMS", "MAX_WORDS", "Node",
           "SpanRules", "TextIndex", "Vocabulary", "accepts", "advance", "advance_bytes", "bytes_to_close",
           "constraints_for", "grammar_for", "grammar_for_instruction", "vocabulary"]
