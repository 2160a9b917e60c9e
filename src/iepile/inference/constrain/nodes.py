"""Byte-level grammar nodes: a string copied from the input text, a list, an object with fixed keys, a map with
copied keys, alternatives. Walked byte by byte by :mod:`iepile.inference.constrain.grammar`."""

from __future__ import annotations

import json
from typing import Any, Sequence

from iepile.inference.constrain.spans import BIG, MAX_ITEMS, TextIndex, _json_cost

MORE, CALL, END = 0, 1, 2  # what a node's step says: the byte is its own, goes to a child, or ends it
_ESCAPES = {ord('"'): ord('"'), ord("\\"): ord("\\"), ord("/"): ord("/"), ord("n"): 10, ord("t"): 9, ord("r"): 13,
            ord("b"): 8, ord("f"): 12}


def _encode_key(key: str) -> bytes:
    return json.dumps(key, ensure_ascii=False).encode("utf-8")

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
