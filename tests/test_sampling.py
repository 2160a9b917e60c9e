"""Splitting and negative sampling: the §2.1 table and property tests."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iepile.convert.sampling import (SamplingOptions, SamplingStats, chunk, choose_labels, load_hard_negatives,
                             record_rng, sample_hard_negatives)


@pytest.mark.parametrize("length, n, sizes", [
    (3, 4, [3]), (5, 4, [5]), (6, 4, [4, 2]), (7, 4, [4, 3]), (8, 4, [4, 4]), (9, 4, [4, 5]),
    (48, 4, [4] * 12), (49, 4, [4] * 11 + [5]), (65, 4, [4] * 15 + [5]),
    (3, 6, [3]), (5, 6, [5]), (6, 6, [6]), (7, 6, [7]), (8, 6, [8]), (9, 6, [6, 3]),
    (48, 6, [6] * 8), (49, 6, [6] * 7 + [7]), (65, 6, [6] * 10 + [5]), (10, -1, [10]), (0, 4, []),
])
def test_chunk_sizes_match_the_reference_table(length, n, sizes):
    assert [len(c) for c in chunk(list(range(length)), n)] == sizes


@given(st.lists(st.integers(), max_size=120), st.integers(min_value=1, max_value=12))
def test_chunk_keeps_every_item_once_in_order(items, n):
    chunks = chunk(items, n)
    assert [x for c in chunks for x in c] == items
    if len(items) <= n:
        assert len(chunks) == (1 if items else 0)
    else:
        assert all(len(c) == n for c in chunks[:-1])
        assert max(1, n // 2) <= len(chunks[-1]) <= n + max(1, n // 2) - 1


def test_chunk_rejects_zero():
    with pytest.raises(ValueError):
        chunk([1, 2], 0)


labels = st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=3), min_size=1, max_size=30, unique=True)


@settings(max_examples=200)
@given(labels, st.data(), st.floats(min_value=0, max_value=1), st.one_of(st.none(), st.integers(0, 4)),
       st.integers(0, 1000))
def test_negative_sampling_keeps_positives_and_respects_knobs(all_labels, data, ratio, cap, seed):
    positives = data.draw(st.lists(st.sampled_from(all_labels), unique=True))
    stats = SamplingStats()
    options = SamplingOptions(neg_ratio=ratio, max_neg_per_pos=cap)
    chosen = choose_labels(positives, all_labels, random.Random(seed), options, stats)
    negatives = chosen[:len(chosen) - len(positives)]
    assert chosen[len(negatives):] == positives
    assert set(negatives).isdisjoint(positives) and len(set(negatives)) == len(negatives)
    assert set(negatives) <= set(all_labels)
    if cap is not None:
        assert len(negatives) <= cap * max(len(positives), 1)
    if ratio == 1 and cap is None:
        assert len(negatives) == len(all_labels) - len(positives)
    if ratio == 0:
        assert negatives == []
    if not positives and ratio > 0 and (cap is None or cap > 0):
        assert len(negatives) >= 1


def test_record_rng_depends_only_on_seed_and_position():
    assert record_rng(1, 5).random() == record_rng(1, 5).random()
    assert record_rng(1, 5).random() != record_rng(1, 6).random()
    assert record_rng(1, 5).random() != record_rng(2, 5).random()


def test_hard_negatives_count_missing_and_outside_labels():
    stats = SamplingStats()
    hard = {"person": ["organization", "alien"], "location": ["organization"]}
    options = SamplingOptions(split_num=1, hard_negatives=hard)
    all_labels = ["person", "organization", "location", "date", "misc"]
    negatives = sample_hard_negatives(["person", "misc"], all_labels, random.Random(0), options, stats)
    assert negatives[0] == "organization"
    assert len(negatives) == 2 and negatives[1] in ("location", "date")
    assert stats.hard_missing_positive == 1 and stats.hard_outside_label_set == 1


@pytest.mark.parametrize("seed", range(5))
def test_hard_negatives_come_first_under_the_cap(seed):
    hard = {"person": ["organization", "location"]}
    all_labels = ["person", "organization", "location", "date", "misc", "event"]
    capped = SamplingOptions(split_num=4, hard_negatives=hard, max_neg_per_pos=1)
    assert sample_hard_negatives(["person"], all_labels, random.Random(seed), capped, SamplingStats()) in (
        ["organization"], ["location"])
    two = SamplingOptions(split_num=4, hard_negatives=hard, max_neg_per_pos=2)
    assert sample_hard_negatives(["person"], all_labels, random.Random(seed), two, SamplingStats()) == [
        "organization", "location"]
    three = SamplingOptions(split_num=4, hard_negatives=hard, max_neg_per_pos=3)
    assert sample_hard_negatives(["person"], all_labels, random.Random(seed), three, SamplingStats())[:2] == [
        "organization", "location"]
    assert len(sample_hard_negatives([], all_labels, random.Random(seed), two, SamplingStats())) <= 2


def test_capped_hard_negatives_are_drawn_from_the_whole_dictionary_entry():
    """Under the cap every similar label gets asked, not only the dictionary's first (a label asked as the negative
    of every record would teach the model that it is always empty)."""
    hard = {"Work_For": ["Live_In", "Located_In", "OrgBased_In", "Kill"]}
    all_labels = ["Live_In", "Located_In", "OrgBased_In", "Work_For", "Kill"]
    capped = SamplingOptions(split_num=4, hard_negatives=hard, max_neg_per_pos=1)
    asked = Counter(label for seed in range(400)
                    for label in sample_hard_negatives(["Work_For"], all_labels, random.Random(seed), capped,
                                                       SamplingStats()))
    assert sum(asked.values()) == 400 and set(asked) == set(hard["Work_For"])
    assert max(asked.values()) < 2 * min(asked.values())


def test_nested_and_flat_hard_negative_files(data_dir):
    nested = load_hard_negatives(data_dir / "iepile-samples/hard_negative/hard_dict.json", "SPO", "DuIE2.0")
    flat = load_hard_negatives(data_dir / "iepile-samples/hard_negative/SPO_DuIE2.0.json", "SPO")
    assert nested == flat and len(flat) == 48
    with pytest.raises(ValueError, match="hard-negative-dataset"):
        load_hard_negatives(data_dir / "iepile-samples/hard_negative/hard_dict.json", "NER")
