"""Answer grammars: walking the nodes of :mod:`iepile.inference.constrain.nodes` byte by byte (advance, the bytes
and the shortest completion that close an answer), and the parts a task builds its answer grammar from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from iepile.inference.constrain.nodes import (ALL, ALL_OR_EMPTY, CALL, MORE, SUBSET, ListNode, MapNode, Node, ObjectNode,
                                             OneOfNode, StringNode)
from iepile.inference.constrain.spans import MAX_CHARS, MAX_ITEMS, MAX_WORDS, NAN, SpanRules, TextIndex
from iepile.instructions import parse_instruction

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


_CLOSING_BYTES_FIRST = tuple(b'"]}, :NA[{') + tuple(range(256))  # the bytes a shortest completion is made of


def shortest_completion(stack: Stack) -> Optional[bytes]:
    """The bytes of one shortest completion of the answer from here: byte by byte, one that lowers
    :func:`bytes_to_close` (every node's ``rest`` is reachable that way; None if a grammar breaks that rule)."""
    out = bytearray()
    need = bytes_to_close(stack)
    while stack:
        for byte in _CLOSING_BYTES_FIRST:
            after = advance(stack, byte)
            if after is not None and bytes_to_close(after) < need:
                break
        else:
            return None
        out.append(byte)
        stack, need = after, bytes_to_close(after)
    return bytes(out)


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
