"""What a string copied from the input may look like (:class:`SpanRules`) and where in the text it may start and end
(:class:`TextIndex`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from iepile.text import ASCII_STOPS, CJK_STOPS, CLOSERS, is_abbreviation, is_cjk

_SPACES = frozenset(b" \t\n\r")
NAN = b"NAN"


def _is_word_byte(byte: int) -> bool:
    return 0x30 <= byte <= 0x39 or 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A


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
        of "U.S.", "AIN" of "AL-AIN"; '"France' and "France" of ' "France"' are fine). The lower-case word after one
        hyphen is not inside a token: PHEE's triggers are "induced" of "cyclosporine A-induced" and "related" of
        "dose-related" (refused, the model under --constrain wrote "in" for "induced"). A CJK character is a word of
        its own: "击败" of "85比70击败了" starts a span."""
        lead = self.data[position]
        if lead >= 0x80:
            char = self.data[position:position + _utf8_length(lead)].decode("utf-8", "replace")
            if char and is_cjk(char[0]):
                return False
        if position and self.data[position - 1] == ord("-") and ord("a") <= lead <= ord("z"):  # "A-induced"
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
