"""Every token of a tokenizer as the bytes it writes (byte-level BPE and SentencePiece), cached per tokenizer."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Optional

# -- tokens as bytes ---------------------------------------------------------------------------------------------------

def _byte_level_alphabet() -> dict[str, int]:
    """GPT-2's byte ↔ printable character table, inverted: character → byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = list(printable), 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {chr(char): byte for byte, char in zip(printable, chars)}


@dataclass
class Vocabulary:
    """Every token's bytes (None for special tokens) and the tokens grouped by first byte."""

    token_bytes: list[Optional[bytes]]
    by_first_byte: dict[int, list[int]]


_VOCABULARIES: "weakref.WeakKeyDictionary[Any, Vocabulary]" = weakref.WeakKeyDictionary()


def vocabulary(tokenizer) -> Vocabulary:
    """Built once per tokenizer: byte-level BPE (GPT-2 alphabet) or SentencePiece (``▁`` and ``<0xNN>``) tokens.
    Cached while the tokenizer lives (a weak key: an ``id()`` key was never evicted and could be reused by another
    tokenizer after the first was freed)."""
    if tokenizer not in _VOCABULARIES:
        _VOCABULARIES[tokenizer] = _build_vocabulary(tokenizer)
    return _VOCABULARIES[tokenizer]


def _build_vocabulary(tokenizer) -> Vocabulary:
    size = len(tokenizer)
    tokens = tokenizer.convert_ids_to_tokens(list(range(size)))
    special = set(tokenizer.all_special_ids)
    for token_id, added in getattr(tokenizer, "added_tokens_decoder", {}).items():
        if getattr(added, "special", False):
            special.add(token_id)
    alphabet = _byte_level_alphabet()
    byte_level = "ByteLevel" in repr(getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", ""))
    token_bytes: list[Optional[bytes]] = []
    for token_id, token in enumerate(tokens):
        if token_id in special or token is None:
            token_bytes.append(None)
        elif byte_level and all(char in alphabet for char in token):
            token_bytes.append(bytes(alphabet[char] for char in token))
        elif token.startswith("<0x") and token.endswith(">") and len(token) == 6:
            token_bytes.append(bytes((int(token[3:5], 16),)))
        else:
            token_bytes.append(token.replace("▁", " ").encode("utf-8"))
    by_first: dict[int, list[int]] = {}
    for token_id, data in enumerate(token_bytes):
        if data:
            by_first.setdefault(data[0], []).append(token_id)
    return Vocabulary(token_bytes, by_first)
