"""Constrained decoding: every answer is a JSON object with exactly the asked schema keys, in order, whose values
have the task's shape and whose extracted strings are copied from the input text.

Why our own automaton instead of a JSON-schema library (xgrammar, outlines, lm-format-enforcer): "a substring of
this input" is not a JSON-schema type. Libraries would need an enum of every substring (quadratic) or a grammar
compiled per instruction (each instruction has its own text and keys), and compiling costs more than our whole
answer. Here the grammar is a handful of small nodes built per instruction in microseconds, walked byte by byte.

How it stays cheap: decoding is greedy, so we do not need the full mask of allowed tokens, only the best allowed
one. We try the model's top-k tokens in order and keep the first the automaton accepts (usually the first one); only
if none fits do we scan every token whose first byte is allowed. That is exact for greedy decoding.

How it stays bounded: separators are exactly the converter's (``", "`` and ``": "``), so there is no free
whitespace; a list of strings cannot repeat a string; and when the token budget runs low the decoder only takes
tokens on a shortest path to closing the object, so an answer never ends mid-JSON.

Strings are matched on UTF-8 bytes against the text (byte-level BPE tokens can split a Chinese character), start
and end on character boundaries, and are written with JSON escapes where the text has ``"``, ``\\`` or control
characters. ``"NAN"`` is allowed where the converter writes it (EE/EEA arguments, EE triggers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from iepile.instructions import parse_instruction

MORE, CALL, END = 0, 1, 2
_ESCAPES = {ord('"'): ord('"'), ord("\\"): ord("\\"), ord("/"): ord("/"), ord("n"): 10, ord("t"): 9, ord("r"): 13,
            ord("b"): 8, ord("f"): 12}
_SPACES = frozenset(b" \t\n\r")
NAN = b"NAN"


def _is_word_byte(byte: int) -> bool:
    return 0x30 <= byte <= 0x39 or 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A


def _encode_key(key: str) -> bytes:
    return json.dumps(key, ensure_ascii=False).encode("utf-8")


# -- the text a string must come from ------------------------------------------------------------------------------

class TextIndex:
    """The input text as UTF-8 bytes, with where each byte value starts a character (the only places a copied string
    may start)."""

    def __init__(self, text: str):
        self.data = text.encode("utf-8")
        self.size = len(self.data)
        self.starts: dict[int, tuple[int, ...]] = {}
        for position, byte in enumerate(self.data):
            if self.is_boundary(position) and byte not in _SPACES and self.is_word_edge(position):
                self.starts.setdefault(byte, []).append(position + 1)
        self.starts = {byte: tuple(ends) for byte, ends in self.starts.items()}

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

    def bytes_to_boundary(self, ends: tuple) -> int:
        """Fewest bytes to add before the string ends on a character and word boundary (0 if it already can)."""
        best = 64
        for end in ends:
            steps = 0
            while steps < best and not (self.is_boundary(end + steps) and self.is_word_edge(end + steps)):
                steps += 1
            best = min(best, steps)
            if best == 0:
                break
        return best


# -- grammar nodes ---------------------------------------------------------------------------------------------------
# A node walks bytes with an immutable local state. ``step`` returns None (rejected), (MORE, local),
# (CALL, local_after_child, child, child_local) (the byte belongs to a child) or (END, value). ``rest`` is the fewest
# bytes needed to finish the node from ``local`` (for a parent: once its active child is done).

class Node:
    min_len: int = 1

    def start(self, exclude: frozenset = frozenset()) -> Any:
        return None

    def child_done(self, local: Any, value: Any) -> tuple[Any, bool]:
        raise NotImplementedError

    def rest(self, local: Any) -> int:
        raise NotImplementedError


class StringNode(Node):
    """A JSON string copied from the text (or one of ``extras``, such as ``NAN``); local = (opened, content bytes,
    end positions in the text or None, in escape, values excluded)."""

    def __init__(self, index: TextIndex, extras: tuple[bytes, ...] = ()):
        self.index, self.extras = index, extras
        self.min_len = 3 if index.size or not extras else 2 + min(map(len, extras))

    def start(self, exclude: frozenset = frozenset()):
        return (False, b"", None, False, exclude)

    def step(self, local, byte: int):
        opened, content, ends, escaping, exclude = local
        if not opened:
            return (MORE, (True, b"", None, False, exclude)) if byte == 0x22 else None
        if escaping:
            decoded = _ESCAPES.get(byte)
            return None if decoded is None else self._feed(local, decoded)
        if byte == 0x22:
            return (END, content.decode("utf-8")) if self._closable(content, ends, exclude) else None
        if byte == 0x5C:
            if any(self._feed(local, decoded) for decoded in set(_ESCAPES.values())):
                return (MORE, (True, content, ends, True, exclude))
            return None
        if byte < 0x20:
            return None
        return self._feed(local, byte)

    def _feed(self, local, byte: int):
        _, content, ends, _, exclude = local
        grown = content + bytes((byte,))
        new_ends = self.index.extend(ends, byte) if ends != () else ()
        if not new_ends and not any(extra.startswith(grown) for extra in self.extras):
            return None
        return (MORE, (True, grown, new_ends, False, exclude))

    def _closable(self, content: bytes, ends: Optional[tuple], exclude: frozenset) -> bool:
        """Non-empty, ends on a character boundary; not a repeat and no trailing space unless the string cannot be
        extended any more (so the walk never reaches a dead end)."""
        if not content:
            return False
        if content in self.extras:
            return content.decode() not in exclude or not ends
        if not ends:
            return False
        boundary_ends = [end for end in ends if self.index.is_boundary(end) and self.index.is_word_edge(end)]
        if not boundary_ends:
            return False
        extendable = any(end < self.index.size for end in boundary_ends)
        clean = content[-1] not in _SPACES and content.decode("utf-8") not in exclude
        return clean or not extendable

    def rest(self, local) -> int:
        opened, content, ends, escaping, exclude = local
        if not opened:
            return self.min_len
        if escaping:
            return 2
        if self._closable(content, ends, exclude):
            return 1
        if ends:
            return 1 + max(1, self.index.bytes_to_boundary(ends))
        matching = [len(extra) - len(content) for extra in self.extras if extra.startswith(content)]
        return 1 + (min(matching) if matching and content else 1)


class ListNode(Node):
    """``[]`` or ``[item, item]`` with the converter's separator; strings in a list are never repeated (the classic
    runaway loop). local = (phase, count, seen)."""

    def __init__(self, item: Node, min_items: int = 0, unique: bool = True):
        self.item, self.min_items, self.unique = item, min_items, unique
        self.min_len = 2 + (item.min_len if min_items else 0)

    def start(self, exclude: frozenset = frozenset()):
        return (0, 0, frozenset())

    def step(self, local, byte: int):
        phase, count, seen = local
        if phase == 0:
            return (MORE, (1, count, seen)) if byte == 0x5B else None
        if phase == 1 or phase == 4:
            if phase == 1 and byte == 0x5D:
                return (END, None) if count >= self.min_items else None
            return (CALL, (2, count, seen), self.item, self.item.start(seen))
        if phase == 2:
            if byte == 0x2C:
                return (MORE, (3, count, seen))
            return (END, None) if byte == 0x5D and count >= self.min_items else None
        return (MORE, (4, count, seen)) if byte == 0x20 else None

    def child_done(self, local, value):
        phase, count, seen = local
        if self.unique and isinstance(value, str):
            seen = seen | {value}
        return (phase, count + 1, seen), False

    def rest(self, local) -> int:
        phase, count, _ = local
        need_item = count < self.min_items
        return {0: self.min_len, 1: 1 + (self.item.min_len if need_item else 0), 2: 1,
                3: 2 + self.item.min_len, 4: 1 + self.item.min_len}[phase]


ALL, ALL_OR_EMPTY, SUBSET = "all", "all_or_empty", "subset"


class ObjectNode(Node):
    """An object with known keys: all of them in order (``all``), all or none (``all_or_empty``), or any of them in
    order (``subset``). local = (phase, next field, candidates, matched bytes)."""

    def __init__(self, fields: Sequence[tuple[str, Node]], mode: str = ALL):
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
        self.min_len = 1 + self._after_open()

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
        if phase in (1, 7):
            return (CALL, (2, seen), self.key, self.key.start(seen))
        if phase == 4:
            return (CALL, (5, seen), self.value, self.value.start())
        if byte == 0x2C:
            return (MORE, (6, seen))
        return (END, None) if byte == 0x7D else None

    def child_done(self, local, value):
        phase, seen = local
        return ((phase, seen | {value}) if phase == 2 else local), False

    def rest(self, local) -> int:
        phase, _ = local
        pair = self.key.min_len + 2 + self.value.min_len
        return {0: 2, 1: 1, 2: 3 + self.value.min_len, 3: 2 + self.value.min_len, 4: 1 + self.value.min_len, 5: 1,
                6: 2 + pair, 7: 1 + pair}[phase]


class OneOfNode(Node):
    """A value chosen by its first byte (``"`` → string, ``[`` → list)."""

    def __init__(self, options: dict[int, Node]):
        self.options = options
        self.min_len = min(node.min_len for node in options.values())

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

def grammar_for(task: str, schema_items: list, text: str) -> Node:
    """The answer grammar for one instruction: keys = the asked schema items in order, values shaped like the
    converter's targets, strings from ``text``."""
    index = TextIndex(text)
    span = StringNode(index)
    span_or_nan = StringNode(index, extras=(NAN,))
    argument = OneOfNode({0x22: span_or_nan, 0x5B: ListNode(span, min_items=1)})
    task = task.upper()
    if task in ("NER", "EET"):
        return ObjectNode([(item, ListNode(span)) for item in schema_items])
    if task in ("RE", "SPO"):
        pair = ObjectNode([("subject", span), ("object", span)])
        keys = schema_items if task == "RE" else list(dict.fromkeys(item["predicate"] for item in schema_items))
        return ObjectNode([(key, ListNode(pair, unique=False)) for key in keys])
    if task == "EE":
        return ObjectNode([(item["event_type"], ListNode(ObjectNode([
            ("trigger", span_or_nan),
            ("arguments", ObjectNode([(role, argument) for role in item.get("arguments", [])], ALL_OR_EMPTY)),
        ]), unique=False)) for item in schema_items])
    if task == "EEA":
        return ObjectNode([(item["event_type"], ListNode(
            ObjectNode([(role, argument) for role in item.get("arguments", [])], ALL), unique=False))
            for item in schema_items])
    if task == "KG":
        value = OneOfNode({0x22: span, 0x5B: ListNode(span, min_items=1)})
        return ObjectNode([(item["entity_type"], MapNode(
            span, ObjectNode([(attribute, value) for attribute in item.get("attributes", [])], SUBSET)))
            for item in schema_items])
    raise ValueError(f"no constrained grammar for task {task!r}")


def grammar_for_instruction(task: str, instruction: str) -> Node:
    parsed = parse_instruction(instruction)
    return grammar_for(task, parsed["schema"], parsed["input"])


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


_VOCABULARIES: dict[int, Vocabulary] = {}


def vocabulary(tokenizer) -> Vocabulary:
    """Built once per tokenizer: byte-level BPE (GPT-2 alphabet) or SentencePiece (``▁`` and ``<0xNN>``) tokens."""
    key = id(tokenizer)
    if key not in _VOCABULARIES:
        _VOCABULARIES[key] = _build_vocabulary(tokenizer)
    return _VOCABULARIES[key]


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
            stack = advance_bytes(constraint.stack, self.vocab.token_bytes[token_id])
            if stack is not None and (best is None or bytes_to_close(stack) < best[0]):
                best = (bytes_to_close(stack), token_id, stack)
        return best[1], best[2]

    def _candidates(self, constraint: JsonConstraint, row_scores) -> list[int]:
        """Every token whose first byte the grammar allows, best score first."""
        import torch

        allowed = [byte for byte in self.vocab.by_first_byte if advance(constraint.stack, byte) is not None]
        token_ids = [t for byte in allowed for t in self.vocab.by_first_byte[byte]]
        ids = torch.tensor(token_ids, dtype=torch.long)
        order = row_scores[ids].argsort(descending=True)
        return ids[order].tolist()


def constraints_for(tasks: Sequence[Optional[str]], instructions: Sequence[str]) -> list[Optional[JsonConstraint]]:
    """One constraint per instruction (None when its task is unknown or its instruction is not IEPile JSON)."""
    out: list[Optional[JsonConstraint]] = []
    for task, instruction in zip(tasks, instructions):
        try:
            out.append(JsonConstraint(grammar_for_instruction(task, instruction)) if task else None)
        except (ValueError, KeyError, TypeError):
            out.append(None)
    return out
