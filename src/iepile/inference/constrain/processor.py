"""The logits processor: per row, the best token its grammar allows (greedy), with a budget that always closes the
JSON."""

from __future__ import annotations

from typing import Optional, Sequence

from iepile.inference.constrain.grammar import (Stack, advance, advance_bytes, bytes_to_close, grammar_for_instruction,
                                                shortest_completion)
from iepile.inference.constrain.nodes import Node
from iepile.inference.constrain.vocabulary import Vocabulary, vocabulary

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

    ``constraints[row]`` is a :class:`JsonConstraint` or None (unconstrained row).

    The budget: a token is allowed when the answer can still be closed in the tokens left. The bytes still needed
    bound that from above (every byte is a token); when they exceed what is left, the shortest completion is
    tokenized, as a long answer's closing (16 event roles of ``"NAN"``: about 350 bytes) takes far fewer tokens
    than bytes, and counting bytes would force such an answer onto its shortest path from the first token."""

    def __init__(self, constraints: list[Optional[JsonConstraint]], tokenizer, eos_ids: Sequence[int],
                 max_new_tokens: int, top_k: int = 16):
        self.constraints = constraints
        self.vocab = vocabulary(tokenizer)
        self.tokenizer = tokenizer
        self.eos_ids = frozenset(eos_ids)
        self.eos_id = list(eos_ids)[0]
        self.max_new_tokens = max_new_tokens
        self.top_k = top_k
        self.prompt_len: Optional[int] = None
        self.fallback_scans = 0
        self.margin = 4  # tokens kept in reserve: a token can cover less than its share of the closing bytes

    def tokens_needed(self) -> int:
        """A token budget that always fits the shortest valid answer (its tokens) and its EOS: the caller raises
        ``max_new_tokens`` to it, so a too-small budget cannot cut an answer."""
        closing = [self.tokens_to_close(c.stack) for c in self.constraints if c is not None]
        return max(closing, default=0) + self.margin + 2

    def tokens_to_close(self, stack: Stack) -> int:
        """Tokens of the tokenized shortest completion (bytes that continue a character count one each; the byte
        count if no completion is found)."""
        data = shortest_completion(stack)
        if data is None:
            return bytes_to_close(stack)
        head = next((i for i, byte in enumerate(data) if byte & 0xC0 != 0x80), len(data))
        text = data[head:].decode("utf-8", errors="replace")
        return head + len(self.tokenizer.encode(text, add_special_tokens=False))

    def fits(self, stack: Stack, room: int) -> bool:
        return bytes_to_close(stack) <= room or self.tokens_to_close(stack) <= room

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
            if stack is not None and self.fits(stack, room):
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
