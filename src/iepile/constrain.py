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
words or 48 characters, whichever allows more); and when the token budget runs low the decoder only takes tokens on a
shortest path to closing the object, so an answer never ends mid-JSON (every node's ``rest`` is exact or an upper
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

import json
import weakref
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from iepile.instructions import parse_instruction
from iepile.text import ASCII_STOPS, CJK_STOPS, CLOSERS, is_abbreviation, is_cjk

MORE, CALL, END = 0, 1, 2
_ESCAPES = {ord('"'): ord('"'), ord("\\"): ord("\\"), ord("/"): ord("/"), ord("n"): 10, ord("t"): 9, ord("r"): 13,
            ord("b"): 8, ord("f"): 12}
_SPACES = frozenset(b" \t\n\r")
NAN = b"NAN"


def _is_word_byte(byte: int) -> bool:
    return 0x30 <= byte <= 0x39 or 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A


def _encode_key(key: str) -> bytes:
    return json.dumps(key, ensure_ascii=False).encode("utf-8")


# -- what a copied string may look like ------------------------------------------------------------------------------

MAX_CHARS, MAX_WORDS, MAX_ITEMS = 48, 8, 8
BIG = 1 << 20  # "cannot be written at all" (min_len of an unsatisfiable node)
_ESCAPED_IN_JSON = frozenset(b'"\\\t')  # bytes that cost two in a JSON string (others we copy are one byte each)
_SEPARATORS = frozenset(",;:，、；：-–—")  # never the first or last character of a span ("Paris,", "首都，", "2-")


def _utf8_length(lead: int) -> int:
    return 2 if 0xC0 <= lead <= 0xDF else 3 if 0xE0 <= lead <= 0xEF else 4 if 0xF0 <= lead <= 0xF7 else 0


@dataclass(frozen=True)
class SpanRules:
    """What no IE span looks like, checked character by character while a copied string is written.

    A string copied from the text must
    * have a letter, digit or CJK character (``str.isalnum``) in its first and in its last whitespace-separated
      word: no punctuation-only strings (".", ","), no detached punctuation at its edges ("Paris ,");
    * not start or end with whitespace or a separator (",;:，、；：" or a dash), nor hold a line break or another control
      character except tab; not start inside an ASCII token ("S" of "U.S.", "AIN" of "AL-AIN"; the
      :class:`TextIndex` checks that);
    * not cross a sentence end: no "。", "！" or "？" anywhere, and no ".", "!" or "?" (optionally followed by a
      closing quote or bracket) followed by whitespace and more text, except a '.' ending an abbreviation
      ("U.S. Open", "John F. Kennedy", "Mr. Smith"); nor end with such a sentence-ending '.' ("Washington." but
      "Inc." and "U.S." are fine; "Yahoo!" too);
    * be short: at most ``max_chars`` characters or at most ``max_words`` words, whichever allows more, and never more
      than ``2 * max_chars`` characters. A CJK character counts as a word, so Chinese is capped at ``max_chars``
      characters (48), English at 8 words (or more, shorter words that fit in 48 characters).

    If no span of the text passes (say the input is "..."), the whole stripped input is the one string allowed, so
    a string is always possible in a non-blank text.

    The state is a tuple (characters, words, current word, pending bytes of an unfinished character, current word
    has a letter/digit, still in the first word, how the last word ends a sentence ("" not, "." or "!"), a sentence
    end was crossed)."""

    max_chars: int = MAX_CHARS
    max_words: int = MAX_WORDS

    initial = (0, 0, "", b"", False, True, "", False)

    def feed(self, state: tuple, byte: int) -> Optional[tuple]:
        """The state after one more (decoded) byte of the string, or None if no span can continue this way."""
        pending = state[3]
        if pending or byte >= 0x80:
            pending += bytes((byte,))
            need = _utf8_length(pending[0])
            if not need:
                return None
            if len(pending) < need:
                return state[:3] + (pending,) + state[4:]
            try:
                char = pending.decode("utf-8")
            except UnicodeDecodeError:
                return None
        else:
            char = chr(byte)
        return self._char(state, char)

    def _char(self, state: tuple, char: str) -> Optional[tuple]:
        chars, words, word, _, word_ok, first, sentence_end, crossed = state
        if (char < " " and char != "\t") or char in CJK_STOPS or char in "\u2028\u2029":
            return None
        chars += 1
        if chars == 1 and (char.isspace() or char in _SEPARATORS):
            return None
        if char.isspace():
            if word:
                if first and not word_ok:
                    return None  # the first word is punctuation only
                first, crossed, sentence_end, word, word_ok = False, crossed or bool(sentence_end), "", "", False
        else:
            if crossed:
                return None
            if not word or is_cjk(char) or is_cjk(word[-1]):
                words += 1
            if char in ASCII_STOPS:
                sentence_end = "!"
            elif char == ".":
                sentence_end = "" if is_abbreviation(word) else "."
            elif char not in CLOSERS:
                sentence_end = ""
            word, word_ok = word + char, word_ok or char.isalnum()
        if chars > 2 * self.max_chars or (chars > self.max_chars and words > self.max_words):
            return None
        return (chars, words, word, b"", word_ok, first, sentence_end, crossed)

    @staticmethod
    def complete(state: tuple) -> bool:
        """Whether a string in this state may end here (on the text's side: a character and word boundary)."""
        word = state[2]
        return bool(word) and state[4] and not state[3] and state[6] != "." and word[-1] not in _SEPARATORS


# -- the text a string must come from ------------------------------------------------------------------------------

class TextIndex:
    """The input text as UTF-8 bytes, with where each byte value starts a character (the only places a copied string
    may start), and the :class:`SpanRules` its strings must pass."""

    def __init__(self, text: str, rules: SpanRules = SpanRules()):
        self.data = text.encode("utf-8")
        self.size = len(self.data)
        self.rules = rules
        self.positions: list[int] = []
        starts: dict[int, list[int]] = {}
        for position, byte in enumerate(self.data):
            if self.is_boundary(position) and byte not in _SPACES and self.is_word_edge(position) \
                    and not self._mid_token(position):
                starts.setdefault(byte, []).append(position + 1)
                self.positions.append(position)
        self.starts = {byte: tuple(ends) for byte, ends in starts.items()}
        self._costs: dict[frozenset, Optional[int]] = {}
        self.has_span = self.span_cost(frozenset()) is not None
        stripped = text.strip().encode("utf-8")
        self.fallback = (stripped,) if stripped and not self.has_span else ()

    def _mid_token(self, position: int) -> bool:
        """Inside an ASCII token, after a letter or digit and some punctuation: not where a span starts (".S" and "S"
        of "U.S.", "AIN" of "AL-AIN"; '"France' and "France" of ' "France"' are fine). A CJK character is a word of
        its own: "击败" of "85比70击败了" starts a span."""
        lead = self.data[position]
        if lead >= 0x80:
            char = self.data[position:position + _utf8_length(lead)].decode("utf-8", "replace")
            if char and is_cjk(char[0]):
                return False
        before = position - 1
        while before >= 0 and self.data[before] < 0x80 and self.data[before] not in _SPACES \
                and not _is_word_byte(self.data[before]):
            before -= 1
        return before >= 0 and _is_word_byte(self.data[before])

    def is_boundary(self, position: int) -> bool:
        return position >= self.size or (self.data[position] & 0xC0) != 0x80

    def is_word_edge(self, position: int) -> bool:
        """Not inside an ASCII word: copied English strings are whole words ("Alic" is not an entity of "Alice")."""
        if position <= 0 or position >= self.size:
            return True
        return not (_is_word_byte(self.data[position - 1]) and _is_word_byte(self.data[position]))

    def extend(self, ends: Optional[tuple], byte: int) -> tuple:
        """End positions of the current string followed by ``byte`` (``ends=None``: the empty string)."""
        if ends is None:
            return self.starts.get(byte, ())
        data, size = self.data, self.size
        return tuple(end + 1 for end in ends if end < size and data[end] == byte)

    def closable_at(self, state: tuple, position: int) -> bool:
        return SpanRules.complete(state) and self.is_boundary(position) and self.is_word_edge(position)

    def closes(self, end: int, state: tuple, limit: int = BIG):
        """Where a string in ``state`` ending at ``end`` may close by copying on, as (JSON bytes to add, end),
        nearest first, up to ``limit`` bytes. Finite: the rules cap a string's length."""
        cost, position, data, feed = 0, end, self.data, self.rules.feed
        while cost <= limit:
            if self.closable_at(state, position):
                yield cost, position
            if position >= self.size:
                return
            byte = data[position]
            state = feed(state, byte)
            if state is None:
                return
            cost += 2 if byte in _ESCAPED_IN_JSON else 1
            position += 1

    def cheapest(self, prefix: bytes, ends: tuple, state: tuple, exclude: frozenset, first: bool = False,
                 limit: int = BIG) -> Optional[int]:
        """Fewest JSON bytes that close a string (``prefix``, ending at any of ``ends``, in rules ``state``) by
        copying on, into a string not in ``exclude``; None if there is none. ``first``: any such close will do (a
        viability check). Walking down the text to that close is always allowed, each byte one closer."""
        best = None
        for end in ends:
            bound = limit if best is None else best - 1
            for cost, position in self.closes(end, state, bound):
                if not exclude or (prefix + self.data[end:position]).decode("utf-8") not in exclude:
                    best = cost
                    break
            if first and best is not None:
                break
        return best

    def span_cost(self, exclude: frozenset) -> Optional[int]:
        """JSON bytes of the cheapest whole span of the text not in ``exclude`` (None if none)."""
        if exclude not in self._costs:
            self._costs[exclude] = self.cheapest(b"", self.positions, self.rules.initial, exclude)
        return self._costs[exclude]


def _json_cost(content: bytes) -> int:
    return len(content) + sum(byte in _ESCAPED_IN_JSON for byte in content)


# -- grammar nodes ---------------------------------------------------------------------------------------------------
# A node walks bytes with an immutable local state. ``step`` returns None (rejected), (MORE, local),
# (CALL, local_after_child, child, child_local) (the byte belongs to a child) or (END, value). ``rest`` is the fewest
# bytes needed to finish the node from ``local`` (for a parent: once its active child is done); it must be reachable
# byte by byte, each byte lowering it by one, so that the decoder never runs out of budget mid-JSON.
# ``satisfiable`` is False for a node that cannot be written at all (a string of a blank text): parents then do not
# open it.

class Node:
    min_len: int = 1
    satisfiable: bool = True

    def start(self, exclude: frozenset = frozenset()) -> Any:
        return None

    def min_len_for(self, exclude: frozenset) -> int:
        """Fewest bytes of the whole node when started with ``exclude``."""
        return self.min_len

    def can_start(self, exclude: frozenset) -> bool:
        """Whether the node can be written when started with ``exclude`` (a list opens an item only then)."""
        return self.satisfiable

    def child_done(self, local: Any, value: Any) -> tuple[Any, bool]:
        raise NotImplementedError

    def rest(self, local: Any) -> int:
        raise NotImplementedError


class StringNode(Node):
    """A JSON string copied from the text under the index's :class:`SpanRules` (or one of ``extras``, such as
    ``NAN``, or the whole input when no span passes the rules), never one of the values in ``exclude`` (the strings
    already in its list); local = (opened, content bytes, end positions in the text or None, in escape, excluded
    values, rules state or None once off the text).

    Every byte is checked to leave a string that can still close on a value not excluded, so the walk never reaches
    a dead end (a list only opens another item when a new value exists, see :meth:`can_start`)."""

    def __init__(self, index: TextIndex, extras: tuple[bytes, ...] = ()):
        self.index = index
        self.extras = tuple(extras) + tuple(extra for extra in index.fallback if extra not in extras)
        self.satisfiable = index.has_span or bool(self.extras)
        self._shortest: dict[frozenset, int] = {}
        self.min_len = self.min_len_for(frozenset())

    def start(self, exclude: frozenset = frozenset()):
        return (False, b"", None, False, exclude, self.index.rules.initial)

    def min_len_for(self, exclude: frozenset) -> int:
        return 2 + self._cheapest_whole(exclude) if self.satisfiable else BIG

    def can_start(self, exclude: frozenset) -> bool:
        return self._cheapest_whole(exclude) < BIG

    def _cheapest_whole(self, exclude: frozenset) -> int:
        """JSON bytes of the cheapest string not in ``exclude`` this node may write from scratch."""
        if exclude not in self._shortest:
            costs = [_json_cost(extra) for extra in self.extras if extra.decode("utf-8") not in exclude]
            span = self.index.span_cost(exclude)
            self._shortest[exclude] = min(costs + ([span] if span is not None else []), default=BIG)
        return self._shortest[exclude]

    def step(self, local, byte: int):
        opened, content, ends, escaping, exclude, rule = local
        if not opened:
            return (MORE, (True, b"", None, False, exclude, rule)) if byte == 0x22 and self.can_start(exclude) \
                else None
        if escaping:
            decoded = _ESCAPES.get(byte)
            return None if decoded is None else self._feed(local, decoded)
        if byte == 0x22:
            return (END, content.decode("utf-8")) if self._closable(local) else None
        if byte == 0x5C:
            if any(self._feed(local, decoded) for decoded in set(_ESCAPES.values())):
                return (MORE, (True, content, ends, True, exclude, rule))
            return None
        if byte < 0x20:
            return None
        return self._feed(local, byte)

    def _fresh_extras(self, content: bytes, exclude: frozenset) -> list[bytes]:
        return [extra for extra in self.extras if extra.startswith(content) and extra.decode("utf-8") not in exclude]

    def _feed(self, local, byte: int):
        _, content, ends, _, exclude, rule = local
        grown = content + bytes((byte,))
        new_ends, new_rule = (), None
        if ends != () and rule is not None:
            new_rule = self.index.rules.feed(rule, byte)
            if new_rule is not None:
                candidates = self.index.extend(ends, byte)
                if candidates and self.index.cheapest(grown, candidates, new_rule, exclude, first=True) is not None:
                    new_ends = candidates
        if not new_ends:
            new_rule = None
            if not self._fresh_extras(grown, exclude):
                return None
        return (MORE, (True, grown, new_ends, False, exclude, new_rule))

    def _closable(self, local) -> bool:
        """Non-empty, not excluded, and a whole extra or a span passing the rules."""
        _, content, ends, _, exclude, rule = local
        if not content:
            return False
        if content not in self.extras and not (ends and any(self.index.closable_at(rule, end) for end in ends)):
            return False
        return not exclude or content.decode("utf-8") not in exclude

    def rest(self, local) -> int:
        opened, content, ends, escaping, exclude, rule = local
        if not opened:
            return self.min_len_for(exclude)
        if escaping:
            plain = (True, content, ends, False, exclude, rule)
            options = [self._feed(plain, decoded) for decoded in set(_ESCAPES.values())]
            return min((1 + self.rest(option[1]) for option in options if option), default=BIG)
        if ends is None:
            return 1 + self._cheapest_whole(exclude)
        if self._closable(local):
            return 1
        costs = [_json_cost(extra[len(content):]) for extra in self._fresh_extras(content, exclude)]
        if ends and rule is not None:
            span = self.index.cheapest(content, ends, rule, exclude)
            costs += [span] if span is not None else []
        return 1 + min(costs, default=BIG)


class ListNode(Node):
    """``[]`` or ``[item, item]`` with the converter's separator and at most ``max_items`` items; strings in a list
    are never repeated (the classic runaway loop). local = (phase, count, seen)."""

    def __init__(self, item: Node, min_items: int = 0, unique: bool = True, max_items: int = MAX_ITEMS):
        self.item, self.min_items, self.unique = item, min_items, unique
        self.max_items = max_items if item.satisfiable else 0
        self.satisfiable = min_items <= self.max_items
        self.min_len = 2 + (item.min_len if min_items else 0) if self.satisfiable else BIG

    def start(self, exclude: frozenset = frozenset()):
        return (0, 0, frozenset())

    def step(self, local, byte: int):
        phase, count, seen = local
        if phase == 0:
            return (MORE, (1, count, seen)) if byte == 0x5B else None
        if phase == 1 or phase == 4:
            if phase == 1 and byte == 0x5D:
                return (END, None) if count >= self.min_items else None
            if not self.max_items:
                return None
            return (CALL, (2, count, seen), self.item, self.item.start(seen))
        if phase == 2:
            if byte == 0x2C:
                return (MORE, (3, count, seen)) if count < self.max_items and self.item.can_start(seen) else None
            return (END, None) if byte == 0x5D and count >= self.min_items else None
        return (MORE, (4, count, seen)) if byte == 0x20 else None

    def child_done(self, local, value):
        phase, count, seen = local
        if self.unique and isinstance(value, str):
            seen = seen | {value}
        return (phase, count + 1, seen), False

    def rest(self, local) -> int:
        phase, count, seen = local
        if phase == 0:
            return self.min_len
        if phase == 1:
            return 1 + (self.item.min_len if count < self.min_items else 0)
        if phase == 2:
            return 1
        return (2 if phase == 3 else 1) + self.item.min_len_for(seen)


ALL, ALL_OR_EMPTY, SUBSET = "all", "all_or_empty", "subset"


class ObjectNode(Node):
    """An object with known keys: all of them in order (``all``), all or none (``all_or_empty``), or any of them in
    order (``subset``). local = (phase, next field, candidates, matched bytes)."""

    def __init__(self, fields: Sequence[tuple[str, Node]], mode: str = ALL):
        fields = list(fields)
        if mode == ALL_OR_EMPTY and not all(node.satisfiable for _, node in fields):
            fields = []  # only {}
        elif mode == SUBSET:
            fields = [(name, node) for name, node in fields if node.satisfiable]
        self.satisfiable = all(node.satisfiable for _, node in fields)
        self.names = [name for name, _ in fields]
        self.values = [node for _, node in fields]
        self.keys = [_encode_key(name) + b": " for name in self.names]
        self.mode = mode if fields else SUBSET
        count = len(fields)
        # cost of emitting fields i.. (each with ", " before it) and the closing brace, for ALL objects
        self.tail = [0] * (count + 1)
        self.tail[count] = 1
        for i in range(count - 1, -1, -1):
            self.tail[i] = self.tail[i + 1] + 2 + len(self.keys[i]) + self.values[i].min_len
        self.min_len = 1 + self._after_open() if self.satisfiable else BIG

    def start(self, exclude: frozenset = frozenset()):
        return ("open", 0, (), 0)

    def _after_open(self) -> int:
        if self.mode == ALL and self.keys:
            return self.tail[0] - 2
        return 1

    def _after_value(self, next_field: int) -> int:
        return self.tail[next_field] if self.mode != SUBSET else 1

    def _candidates(self, next_field: int) -> tuple[int, ...]:
        if self.mode == SUBSET:
            return tuple(range(next_field, len(self.keys)))
        return (next_field,) if next_field < len(self.keys) else ()

    def step(self, local, byte: int):
        phase, next_field, candidates, matched = local
        if phase == "open":
            return (MORE, ("first", 0, (), 0)) if byte == 0x7B else None
        if phase == "first" and byte == 0x7D:
            return (END, None) if self.mode != ALL or not self.keys else None
        if phase in ("first", "key"):
            return self._match_key(self._candidates(next_field), 0, next_field, byte)
        if phase == "matching":
            return self._match_key(candidates, matched, next_field, byte)
        if phase == "value":
            field = candidates[0]
            node = self.values[field]
            return (CALL, ("after", field + 1, (), 0), node, node.start())
        if phase == "after":
            more = bool(self._candidates(next_field))
            if byte == 0x2C and more:
                return (MORE, ("comma", next_field, (), 0))
            complete = self.mode == SUBSET or next_field == len(self.keys)
            return (END, None) if byte == 0x7D and complete else None
        return (MORE, ("key", next_field, (), 0)) if byte == 0x20 else None  # "comma"

    def _match_key(self, candidates: tuple, matched: int, next_field: int, byte: int):
        alive = tuple(c for c in candidates if self.keys[c][matched] == byte)
        if not alive:
            return None
        matched += 1
        done = [c for c in alive if len(self.keys[c]) == matched]
        if done:
            return (MORE, ("value", next_field, (done[0],), 0))
        return (MORE, ("matching", next_field, alive, matched))

    def child_done(self, local, value):
        return local, False

    def rest(self, local) -> int:
        phase, next_field, candidates, matched = local
        if phase == "open":
            return self.min_len
        if phase == "first":
            return self._after_open()
        if phase == "after":
            return self._after_value(next_field)
        if phase in ("comma", "key"):
            options = self._candidates(next_field)
            cost = min(len(self.keys[c]) + self.values[c].min_len + self._after_value(c + 1) for c in options)
            return cost + (1 if phase == "comma" else 0)
        if phase == "value":
            field = candidates[0]
            return self.values[field].min_len + self._after_value(field + 1)
        return min(len(self.keys[c]) - matched + self.values[c].min_len + self._after_value(c + 1)
                   for c in candidates)


class MapNode(Node):
    """``{}`` or ``{key: value, ...}`` with keys copied from the text, never repeated (KG: entity → attributes).
    local = (phase, seen)."""

    def __init__(self, key: StringNode, value: Node):
        self.key, self.value = key, value
        self.min_len = 2

    def start(self, exclude: frozenset = frozenset()):
        return (0, frozenset())

    def step(self, local, byte: int):
        phase, seen = local
        literal = {0: 0x7B, 2: 0x3A, 3: 0x20, 6: 0x20}
        if phase in literal:
            return (MORE, (phase + 1, seen)) if byte == literal[phase] else None
        if phase == 1 and byte == 0x7D:
            return (END, None)
        if phase == 1 and not (self.key.satisfiable and self.value.satisfiable):
            return None
        if phase in (1, 7):
            return (CALL, (2, seen), self.key, self.key.start(seen))
        if phase == 4:
            return (CALL, (5, seen), self.value, self.value.start())
        if byte == 0x2C:
            return (MORE, (6, seen)) if self.key.can_start(seen) else None
        return (END, None) if byte == 0x7D else None

    def child_done(self, local, value):
        phase, seen = local
        return ((phase, seen | {value}) if phase == 2 else local), False

    def rest(self, local) -> int:
        phase, seen = local
        pair = self.key.min_len_for(seen) + 2 + self.value.min_len
        return {0: 2, 1: 1, 2: 3 + self.value.min_len, 3: 2 + self.value.min_len, 4: 1 + self.value.min_len, 5: 1,
                6: 2 + pair, 7: 1 + pair}[phase]


class OneOfNode(Node):
    """A value chosen by its first byte (``"`` → string, ``[`` → list)."""

    def __init__(self, options: dict[int, Node]):
        self.options = {byte: node for byte, node in options.items() if node.satisfiable}
        self.satisfiable = bool(self.options)
        self.min_len = min((node.min_len for node in self.options.values()), default=BIG)

    def step(self, local, byte: int):
        node = self.options.get(byte)
        return None if node is None else (CALL, "chosen", node, node.start())

    def child_done(self, local, value):
        return local, True

    def rest(self, local) -> int:
        return self.min_len if local is None else 0


# -- walking -----------------------------------------------------------------------------------------------------------

Stack = tuple  # of (node, local) frames, innermost last; () = the answer is complete


def advance(stack: Stack, byte: int) -> Optional[Stack]:
    """The stack after one more byte, or None if the byte is not allowed."""
    while True:
        if not stack:
            return None
        node, local = stack[-1]
        result = node.step(local, byte)
        if result is None:
            return None
        if result[0] == MORE:
            return stack[:-1] + ((node, result[1]),)
        if result[0] == CALL:
            stack = stack[:-1] + ((node, result[1]), (result[2], result[3]))
            continue
        return _finish(stack[:-1], result[1])


def _finish(stack: Stack, value: Any) -> Stack:
    while stack:
        node, local = stack[-1]
        local, finished = node.child_done(local, value)
        if not finished:
            return stack[:-1] + ((node, local),)
        stack, value = stack[:-1], None
    return ()


def advance_bytes(stack: Stack, data: bytes) -> Optional[Stack]:
    for byte in data:
        stack = advance(stack, byte)
        if stack is None:
            return None
    return stack


def bytes_to_close(stack: Stack) -> int:
    """Fewest bytes that complete the answer from here."""
    return sum(node.rest(local) for node, local in stack)


def accepts(grammar: Node, text: str) -> bool:
    """Whether ``text`` is a complete answer of the grammar (for tests and checks)."""
    stack = advance_bytes(((grammar, grammar.start()),), text.encode("utf-8"))
    return stack == ()


# -- the shape of each task's answer ----------------------------------------------------------------------------------

@dataclass
class AnswerParts:
    """What a task's answer grammar (:meth:`iepile.tasks.base.Task.answer_grammar`) is built from, bound to one
    input text: strings copied from it, lists, objects with fixed keys, maps with copied keys, alternatives."""

    span: Node          # a string copied from the input text
    span_or_nan: Node   # the same, or "NAN" (an argument or trigger the text does not give)
    max_items: int

    ALL, ALL_OR_EMPTY, SUBSET = ALL, ALL_OR_EMPTY, SUBSET  # object modes: every key / every key or none / some keys

    def listed(self, item: Node, **options) -> Node:
        """A JSON list of ``item`` (at most ``max_items``; ``unique``, ``min_items`` as :class:`ListNode`)."""
        return ListNode(item, max_items=self.max_items, **options)

    def object(self, fields: list, mode: Optional[str] = None) -> Node:
        """A JSON object with these ``(key, value node)`` fields in this order."""
        return ObjectNode(fields, mode) if mode else ObjectNode(fields)

    def mapping(self, key: Node, value: Node) -> Node:
        """A JSON object whose keys are copied strings (KG: entity → attributes)."""
        return MapNode(key, value)

    def span_or_spans(self, span: Optional[Node] = None) -> Node:
        """A string, or a non-empty list of strings (an argument or attribute with several values)."""
        span = span or self.span
        return OneOfNode({0x22: span, 0x5B: self.listed(self.span, min_items=1)})


def grammar_for(task: str, schema_items: list, text: str, *, max_chars: int = MAX_CHARS, max_words: int = MAX_WORDS,
                max_items: int = MAX_ITEMS) -> Node:
    """The answer grammar for one instruction, as the task defines it: keys = the asked schema items in order,
    values shaped like the converter's targets, strings from ``text`` passing :class:`SpanRules` (``max_chars``,
    ``max_words``), every list at most ``max_items`` long."""
    from iepile.tasks import TASKS

    if task.upper() not in TASKS:
        raise ValueError(f"no constrained grammar for task {task!r}")
    index = TextIndex(text, SpanRules(max_chars, max_words))
    parts = AnswerParts(StringNode(index), StringNode(index, extras=(NAN,)), max_items)
    return TASKS[task.upper()].answer_grammar(schema_items, parts)


def grammar_for_instruction(task: str, instruction: str, **options) -> Node:
    parsed = parse_instruction(instruction)
    return grammar_for(task, parsed["schema"], parsed["input"], **options)


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


# -- the logits processor ----------------------------------------------------------------------------------------------

class JsonConstraint:
    """One row's walk through its grammar: the current stack and whether the answer (and its EOS) is done."""

    def __init__(self, grammar: Node):
        self.stack: Stack = ((grammar, grammar.start()),)
        self.pending: Optional[tuple[int, Stack]] = None
        self.ended = False

    def commit(self, token_id: int, vocab: Vocabulary, eos_ids: frozenset) -> None:
        """Follow the token the model actually emitted (normally the one we chose)."""
        if self.ended:
            return
        if token_id in eos_ids:
            self.ended = True
        elif self.pending and self.pending[0] == token_id:
            self.stack = self.pending[1]
        else:
            data = vocab.token_bytes[token_id]
            stack = advance_bytes(self.stack, data) if data else None
            self.stack = stack if stack is not None else self.stack
        self.pending = None


class ConstrainedLogitsProcessor:
    """A transformers logits processor that keeps, per row, only the best token the row's grammar allows (greedy).

    ``constraints[row]`` is a :class:`JsonConstraint` or None (unconstrained row)."""

    def __init__(self, constraints: list[Optional[JsonConstraint]], tokenizer, eos_ids: Sequence[int],
                 max_new_tokens: int, top_k: int = 16):
        self.constraints = constraints
        self.vocab = vocabulary(tokenizer)
        self.eos_ids = frozenset(eos_ids)
        self.eos_id = list(eos_ids)[0]
        self.max_new_tokens = max_new_tokens
        self.top_k = top_k
        self.prompt_len: Optional[int] = None
        self.fallback_scans = 0
        self.margin = 4  # tokens kept in reserve: a token can cover less than its share of the closing bytes

    def tokens_needed(self) -> int:
        """A token budget that always fits the shortest valid answer (one token per byte at worst) and its EOS:
        the caller raises ``max_new_tokens`` to it, so a too-small budget cannot cut an answer."""
        closing = [bytes_to_close(c.stack) for c in self.constraints if c is not None]
        return max(closing, default=0) + self.margin + 2

    def __call__(self, input_ids, scores):
        import torch

        if self.prompt_len is None:
            self.prompt_len = input_ids.shape[1]
        else:
            last = input_ids[:, -1].tolist()
            for row, constraint in enumerate(self.constraints):
                if constraint is not None:
                    constraint.commit(last[row], self.vocab, self.eos_ids)
        remaining = self.max_new_tokens - (input_ids.shape[1] - self.prompt_len)
        masked = torch.full_like(scores, float("-inf"))
        for row, constraint in enumerate(self.constraints):
            if constraint is None:
                masked[row] = scores[row]
                continue
            token_id = self._choose(constraint, scores[row], remaining)
            masked[row, token_id] = scores[row, token_id]
            if not torch.isfinite(masked[row, token_id]):
                masked[row, token_id] = 0.0
        return masked

    def _choose(self, constraint: JsonConstraint, row_scores, remaining: int) -> int:
        """The best-scoring allowed token that still leaves room to close the answer within the token budget."""
        if constraint.ended or constraint.stack == ():
            return self.eos_id
        room = remaining - 2 - self.margin  # after this token, and the EOS
        top = row_scores.topk(min(self.top_k, row_scores.shape[0])).indices.tolist()
        choice = self._first_allowed(constraint, top, room)
        if choice is None:
            self.fallback_scans += 1
            candidates = self._candidates(constraint, row_scores)
            choice = self._first_allowed(constraint, candidates, room) or \
                self._closest_to_done(constraint, candidates)
        token_id, stack = choice
        constraint.pending = (token_id, stack)
        return token_id

    def _first_allowed(self, constraint: JsonConstraint, token_ids: list[int], room: int):
        for token_id in token_ids:
            data = self.vocab.token_bytes[token_id]
            if not data:
                continue
            stack = advance_bytes(constraint.stack, data)
            if stack is not None and bytes_to_close(stack) <= room:
                return token_id, stack
        return None

    def _closest_to_done(self, constraint: JsonConstraint, token_ids: list[int]):
        best = None
        for token_id in token_ids:
            data = self.vocab.token_bytes[token_id]
            stack = advance_bytes(constraint.stack, data) if data else None
            if stack is not None and (best is None or bytes_to_close(stack) < best[0]):
                best = (bytes_to_close(stack), token_id, stack)
        if best is None:  # no token of the vocabulary continues the grammar: end the answer here
            return self.eos_id, ()
        return best[1], best[2]

    def _candidates(self, constraint: JsonConstraint, row_scores) -> list[int]:
        """Every token whose first byte the grammar allows, best score first."""
        import torch

        allowed = [byte for byte in self.vocab.by_first_byte if advance(constraint.stack, byte) is not None]
        token_ids = [t for byte in allowed for t in self.vocab.by_first_byte[byte]]
        ids = torch.tensor(token_ids, dtype=torch.long)
        order = row_scores[ids].argsort(descending=True)
        return ids[order].tolist()


def constraints_for(tasks: Sequence[Optional[str]], instructions: Sequence[str],
                    **options) -> list[Optional[JsonConstraint]]:
    """One constraint per instruction (None when its task is unknown or its instruction is not IEPile JSON);
    ``options`` (``max_chars``, ``max_words``, ``max_items``) go to :func:`grammar_for`."""
    out: list[Optional[JsonConstraint]] = []
    for task, instruction in zip(tasks, instructions):
        try:
            out.append(JsonConstraint(grammar_for_instruction(task, instruction, **options)) if task else None)
        except (ValueError, KeyError, TypeError):
            out.append(None)
    return out
