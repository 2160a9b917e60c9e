"""A recall knob for generative extraction: decide "extract or not" by probability, not by greedy argmax.

Why: a small fine-tuned model often knows *what* the entity is long before it dares to answer it. In an IEPile
answer the whole decision "is there anything of this type?" is ONE token — ` []` (empty list) against ` ["` (a list
that opens with a string) — and the decision "is there another one?" is one token too — `"]` against `", "`. Greedy
decoding picks the likelier side, so a model that gives the open list 40 % answers nothing. Measured on a 60-step
adapter (bench/RESULTS.md): true entity lists opened with probability 0.04–0.38, yet once open the right entity
followed with probability 0.7–1.0.

:class:`ListDecisionProcessor` is a transformers logits processor. It follows each row's answer with a tiny JSON
cursor, and at those two kinds of decision points it sums the probability of the *extracting* tokens (open a list;
add another item) and of the *stopping* tokens (an empty list; close the list). When the extracting share
``p_extract / (p_extract + p_stop)`` reaches ``threshold`` the stopping tokens are removed, otherwise the extracting
ones are: ``threshold`` 0.5 is about greedy, lower values trade precision for recall, higher values the reverse.
Everything else is left to the model (or to the constrained-decoding grammar, which runs after this processor and
still only allows what its grammar allows).
"""

from __future__ import annotations

import math
from typing import Optional

_SPACE = b" \t\r\n"

# Token classes: columns of the processor's class matrix. A token's class is read off its bytes alone; the cursor
# decides whether the context makes it a decision. "Quoted" classes end the string item first (`"]`, `",`, `"},`).
EMPTY, OPEN = 0, 1  # ` []` | ` ["`, ` [{`
CLOSE, MORE, CLOSE_OBJECT, MORE_OBJECT = 2, 3, 4, 5  # `]` | `,` | `}]` | `},` (after an item)
QUOTED = 4  # + QUOTED: the same after a closing quote: `"]` | `",` | `"}]` | `"},` (classes 6 to 9)
CLASSES = 10


def check_threshold(threshold: Optional[float]) -> Optional[float]:
    """None, or a probability strictly between 0 and 1 (0 and 1 would make one side impossible: not a threshold)."""
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or math.isnan(threshold) \
            or not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"--threshold must be a probability between 0 and 1 (exclusive), got {threshold!r}")
    return float(threshold)


def token_class(data: bytes) -> Optional[int]:
    """The decision class of a token's bytes, or None."""
    rest = data.lstrip(_SPACE)
    if rest.startswith(b"[]"):
        return EMPTY
    if rest.startswith(b"["):
        return OPEN
    quoted = rest.startswith(b'"')
    if quoted:
        rest = rest[1:].lstrip(_SPACE)
    kind = _ending_class(rest)
    if kind is None:
        return None
    return kind + QUOTED if quoted else kind


def _ending_class(rest: bytes) -> Optional[int]:
    if rest.startswith(b"]"):
        return CLOSE
    if rest.startswith(b","):
        return MORE
    if rest.startswith(b"}"):
        after = rest[1:].lstrip(_SPACE)
        if after.startswith(b"]"):
            return CLOSE_OBJECT
        if after.startswith(b","):
            return MORE_OBJECT
    return None


class JsonCursor:
    """Where an answer is, byte by byte: open containers, inside a string or not, and the last byte outside strings.
    Deliberately forgiving (no validation): it only has to recognise the decision points of well-formed answers."""

    __slots__ = ("stack", "in_string", "escaped", "string_length", "last")

    def __init__(self):
        self.stack: list[int] = []
        self.in_string = False
        self.escaped = False
        self.string_length = 0
        self.last = 0

    def feed(self, data: bytes) -> None:
        for byte in data:
            if self.in_string:
                self._string_byte(byte)
            elif byte not in _SPACE:
                self._structure_byte(byte)

    def _string_byte(self, byte: int) -> None:
        if self.escaped:
            self.escaped = False
        elif byte == 0x5C:  # backslash
            self.escaped = True
            return
        elif byte == 0x22:  # closing quote
            self.in_string, self.last = False, byte
            return
        self.string_length += 1

    def _structure_byte(self, byte: int) -> None:
        if byte == 0x22:
            self.in_string, self.string_length = True, 0
        elif byte in b"{[":
            self.stack.append(byte)
        elif byte in b"}]" and self.stack:
            self.stack.pop()
        self.last = byte

    def decision(self) -> Optional[tuple[int, int]]:
        """(extracting class, stopping class) when the next token decides how much to extract, else None.

        Decision points: a value after ``"key":`` (open a list or answer an empty one); a list item that ended or
        a string item that may end (another item or close the list); the same one level down, for lists of
        objects (``"},`` another object, ``"}]`` the last one). Inside a string the decision is only taken when
        the model's own choice is to end the string (see :meth:`ListDecisionProcessor._decide`)."""
        if not self.stack:
            return None
        inside = self.stack[-1]
        in_object_list = inside == 0x7B and len(self.stack) > 1 and self.stack[-2] == 0x5B
        if self.in_string:
            if not self.string_length:
                return None
            if inside == 0x5B:
                return MORE + QUOTED, CLOSE + QUOTED
            return (MORE_OBJECT + QUOTED, CLOSE_OBJECT + QUOTED) if in_object_list else None
        if inside == 0x7B and self.last == 0x3A:
            return OPEN, EMPTY
        if self.last not in b'"}]':
            return None
        if inside == 0x5B:
            return MORE, CLOSE
        return (MORE_OBJECT, CLOSE_OBJECT) if in_object_list else None


class ListDecisionProcessor:
    """The transformers logits processor (see the module docstring); one cursor per row of the batch."""

    def __init__(self, tokenizer, threshold: float, rows: int):
        import torch

        from iepile.inference.constrain import vocabulary

        self.threshold = check_threshold(threshold)
        self.token_bytes = vocabulary(tokenizer).token_bytes
        classes = torch.zeros(len(self.token_bytes), CLASSES)
        for token_id, data in enumerate(self.token_bytes):
            kind = token_class(data) if data else None
            if kind is not None:
                classes[token_id, kind] = 1.0
        self.classes = classes
        self.masks = classes.T.bool()
        self.cursors = [JsonCursor() for _ in range(rows)]
        self.prompt_len: Optional[int] = None
        self.decisions = 0  # decision points seen
        self.flipped = 0  # decisions that went against greedy

    def __call__(self, input_ids, scores):
        import torch

        if self.prompt_len is None:
            self.prompt_len = input_ids.shape[1]
        else:
            for cursor, token_id in zip(self.cursors, input_ids[:, -1].tolist()):
                data = self.token_bytes[token_id] if token_id < len(self.token_bytes) else None
                if data:  # special tokens (None) and padding after an answer ended carry no JSON
                    cursor.feed(data)
        points = [(row, cursor.decision()) for row, cursor in enumerate(self.cursors)]
        points = [(row, point) for row, point in points if point is not None]
        if not points:
            return scores
        rows = torch.tensor([row for row, _ in points])
        mass = scores[rows].float().softmax(-1) @ self.classes.to(scores.device)
        best = scores[rows].argmax(-1).tolist()
        scores = scores.clone()
        for (row, (extract, stop)), row_mass, top in zip(points, mass.tolist(), best):
            self._decide(scores, row, extract, stop, row_mass, top)
        return scores

    def _decide(self, scores, row: int, extract: int, stop: int, mass: list[float], top: int) -> None:
        """Remove the losing side. Inside a string (quoted classes) only when the model's own choice is one of the
        two sides: there, most tokens continue the string and are no decision at all."""
        if extract >= CLOSE + QUOTED and not (self.masks[extract, top] or self.masks[stop, top]):
            return
        total = mass[extract] + mass[stop]
        if total <= 0.0:
            return
        self.decisions += 1
        extracting = mass[extract] / total >= self.threshold
        if extracting != bool(self.masks[extract, top]):
            self.flipped += 1
        loser = stop if extracting else extract
        scores[row, self.masks[loser].to(scores.device)] = float("-inf")
