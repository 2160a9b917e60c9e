"""Lenient answer parsing: every malformed-answer kind gets a stated status."""

import pytest

from iepile.inference.answers import parse_answer

CASES = [
    ('{"a": ["x"]}', {"a": ["x"]}, "clean"),
    ('  {"a": []}\n', {"a": []}, "clean"),
    ('```json\n{"a": 1}\n```', {"a": 1}, "repaired"),
    ('```\n{"a": 1}', {"a": 1}, "repaired"),
    ('Sure! {"a": ["}"]} hope it helps', {"a": ["}"]}, "repaired"),
    ('{"a": ["x", "y"', {"a": ["x", "y"]}, "repaired"),
    ('{"a": ["x"], "b": ["half', {"a": ["x"], "b": []}, "repaired"),
    ('{"a": [{"s": "x"}], "b', {"a": [{"s": "x"}]}, "repaired"),
    ('{"a": ["x",], }', {"a": ["x"]}, "repaired"),
    ("{'a': 'b'}", {"a": "b"}, "repaired"),
    ('{"a": "b"}{"a": "c"}', {"a": "b"}, "repaired"),
    ("garbage", None, "failed"),
    ("", None, "failed"),
    ("[1, 2]", None, "failed"),
    (None, None, "failed"),
]


@pytest.mark.parametrize("text, value, status", CASES)
def test_lenient(text, value, status):
    parsed = parse_answer(text)
    assert (parsed.value, parsed.status) == (value, status)


@pytest.mark.parametrize("text, value, status", CASES)
def test_strict_accepts_only_what_json_loads_accepts(text, value, status):
    parsed = parse_answer(text, repair=False)
    expected = (value, "clean") if status == "clean" else (None, "failed")
    assert (parsed.value, parsed.status) == expected
