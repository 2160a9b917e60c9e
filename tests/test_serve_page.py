"""The page of ``iepile serve`` in real headless Chromium (Debian's ``chromium``, driven by Playwright): type a
text, edit the schema, run, and check the highlighted spans and the table against the service's own answer, in
English and in Chinese. The answers come from a scripted generator (known entities), so the spans are known."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from predict_support import scripted, tiny_generator, tiny_loaded, tiny_model_dir, tiny_tokenizer  # noqa: F401
from serve_support import served
from iepile.inference.extract import Extractor
from iepile.serve.options import ServeOptions

CHROMIUM = os.environ.get("IEPILE_CHROMIUM", "/usr/bin/chromium")
KNOWN = {"person": ["Alice", "Bob"], "organization": ["ACME"], "location": ["Paris"],
         "人物": ["张三"], "地点": ["北京", "上海"]}


def known_entities(schema, text):
    return json.dumps({label: [e for e in KNOWN.get(label, []) if e in text] for label in schema},
                      ensure_ascii=False)


@pytest.fixture()
def browser():
    assert shutil.which(CHROMIUM) or Path(CHROMIUM).exists(), \
        f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium fonts-noto-cjk)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.mark.parametrize("text, schema, language, expected", [
    ("Alice met Bob at ACME in Paris. Alice left.", ["person", "organization", "location"], "en",
     [("Alice", "person"), ("Bob", "person"), ("ACME", "organization"), ("Paris", "location"),
      ("Alice", "person")]),
    ("张三昨天从北京到上海。", ["人物", "地点"], "zh", [("张三", "人物"), ("北京", "地点"), ("上海", "地点")]),
])
def test_page_highlights_every_span_and_lists_every_item(browser, scripted, tmp_path, text, schema, language,
                                                         expected):
    options = ServeOptions()
    extractor = Extractor(generator=scripted(known_entities), options=options)
    with served(extractor, options) as (url, _):
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "/")
        page.fill("#text", text)
        page.fill("#schema", json.dumps(schema, ensure_ascii=False))
        page.select_option("#language", language)
        page.click("#run")
        page.wait_for_selector("#rendered mark")
        marks = page.eval_on_selector_all("#rendered mark", "ms => ms.map(m => [m.firstChild.textContent, "
                                          "m.dataset.label])")
        rows = page.eval_on_selector_all("table.items tr", "rs => rs.slice(1).map(r => r.cells[1].textContent)")
        raw = json.loads(page.inner_text("#raw"))
        page.screenshot(path=str(tmp_path / f"page-{language}.png"), full_page=True)
    assert not errors
    assert [tuple(m) for m in marks] == expected
    assert sorted(rows) == sorted(dict.fromkeys(value for value, _ in expected))
    assert raw[0]["text"] == text and raw[0]["language"] == language
    assert (tmp_path / f"page-{language}.png").stat().st_size > 10_000


def test_page_shows_the_services_error(browser, tiny_generator):
    options = ServeOptions(max_text_chars=5)
    with served(Extractor(generator=tiny_generator, options=options), options) as (url, _):
        page = browser.new_page()
        page.goto(url + "/")
        page.fill("#text", "a text longer than five characters")
        page.click("#run")
        page.wait_for_function("document.getElementById('error').textContent.length > 0")
        message = page.inner_text("#error")
        page.fill("#schema", "[not json")
        page.click("#run")
        schema_message = page.inner_text("#error")
    assert "422" in message and "max_text_chars (5)" in message
    assert schema_message.startswith("schema: not JSON")
