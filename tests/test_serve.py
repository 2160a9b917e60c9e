"""``iepile serve`` on the tiny local model: every route, every bound, the API key, concurrency (micro-batched
answers equal one-at-a-time answers) and graceful refusal when the queue is full."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

from predict_support import scripted, tiny_generator, tiny_loaded, tiny_model_dir, tiny_tokenizer  # noqa: F401
from serve_support import served
from iepile.inference.extract import Extractor
from iepile.serve.app import create_app
from iepile.serve.options import ServeOptions

SCHEMA = ["person", "organization", "location"]
TEXT = "Alice works for ACME in Paris."


def make_client(generator, **settings) -> TestClient:
    options = ServeOptions(**settings)
    options.validate()
    return TestClient(create_app(Extractor(generator=generator, options=options), options))


class Gated:
    """The real tiny generator behind a gate: the test decides when generation may start (to fill the queue)."""

    def __init__(self, generator):
        self.inner, self.gate = generator, threading.Event()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, requests, on_answer):
        self.gate.wait(30)
        self.inner.generate(requests, on_answer)


def test_extract_returns_what_the_extractor_returns(tiny_generator):
    expected = [r.to_dict() for r in Extractor(generator=tiny_generator).extract_batch([TEXT, "Bob met Carol."],
                                                                                          SCHEMA, task="NER")]
    with make_client(tiny_generator) as client:
        one = client.post("/v1/extract", json={"text": TEXT, "schema": SCHEMA, "task": "NER"})
        both = client.post("/v1/extract", json={"text": [TEXT, "Bob met Carol."], "schema": SCHEMA})
    assert one.status_code == 200 and both.status_code == 200
    assert one.json()["results"] == expected[:1]
    assert both.json()["results"] == expected
    result = both.json()["results"][0]
    assert set(result) >= {"text", "task", "answer", "items", "windows", "split"}
    assert list(result["answer"]) == SCHEMA


def test_event_schema_and_chinese_text(tiny_generator):
    with make_client(tiny_generator) as client:
        response = client.post("/v1/extract", json={"text": "北京时间昨天发生了地震。", "task": "EE",
                                                    "schema": {"地震": ["时间", "地点"]}, "language": "zh"})
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert result["language"] == "zh" and list(result["answer"]) == ["地震"]


def test_gliner_route_gives_offsets_into_the_text(tiny_generator):
    with make_client(tiny_generator) as client:
        response = client.post("/v1/gliner", json={"text": TEXT, "labels": SCHEMA, "threshold": 0.5})
        direct = client.post("/v1/extract", json={"text": TEXT, "schema": SCHEMA}).json()["results"][0]
    assert response.status_code == 200
    entities = response.json()["entities"]
    occurrences = sum(len(s["offsets"]) for item in direct["items"] for s in item["spans"])
    assert len(entities) == occurrences
    for entity in entities:
        assert set(entity) == {"start", "end", "text", "label", "score"}
        assert TEXT[entity["start"]:entity["end"]] == entity["text"] and entity["label"] in SCHEMA


def test_health_and_info_report_the_limits(tiny_generator):
    with make_client(tiny_generator, max_texts=3, max_queue=7) as client:
        assert client.get("/v1/health").json()["status"] == "ok"
        info = client.get("/v1/info").json()
        page = client.get("/")
        docs = client.get("/openapi.json")
    assert info["limits"]["max_texts"] == 3 and info["limits"]["max_queue"] == 7
    assert info["api_key_required"] is False and info["version"]
    assert page.status_code == 200 and "/v1/extract" in page.text and "<script" in page.text
    assert "/v1/extract" in docs.json()["paths"]


@pytest.mark.parametrize("settings, body, status, words", [
    ({"max_body_bytes": 200}, {"text": "x" * 300, "schema": SCHEMA}, 413, "max_body_bytes (200"),
    ({"max_texts": 2}, {"text": ["a b", "c d", "e f"], "schema": SCHEMA}, 422, "max_texts (2)"),
    ({"max_text_chars": 10}, {"text": "a" * 11, "schema": SCHEMA}, 422, "text[0]: 11 characters, over max_text_chars"),
    ({"max_schema_items": 2}, {"text": TEXT, "schema": SCHEMA}, 422, "schema: 3 items, over max_schema_items (2)"),
    ({}, {"text": "   ", "schema": SCHEMA}, 422, "text[0]: empty text"),
    ({}, {"text": [], "schema": SCHEMA}, 422, "at least one text"),
    ({}, {"text": TEXT, "schema": SCHEMA, "task": "POS"}, 422, "schema:"),
    ({}, {"text": TEXT, "schema": [], "task": "NER"}, 422, "no labels"),
    ({}, {"text": 5, "schema": SCHEMA}, 422, "text"),
    ({}, {"text": TEXT}, 422, "schema"),
    ({}, {"text": TEXT, "schema": SCHEMA, "model": "/etc/passwd"}, 422, "model"),
])
def test_every_bound_and_bad_request_is_a_clear_error(tiny_generator, settings, body, status, words):
    with make_client(tiny_generator, **settings) as client:
        response = client.post("/v1/extract", json=body)
    assert response.status_code == status, response.text
    assert words in json.dumps(response.json(), ensure_ascii=False)


def test_malformed_json_is_422(tiny_generator):
    with make_client(tiny_generator) as client:
        response = client.post("/v1/extract", content=b'{"text": "a", "schema": [', headers={
            "Content-Type": "application/json"})
    assert response.status_code == 422


def test_api_key(tiny_generator):
    with make_client(tiny_generator, api_key="s3cret") as client:
        body = {"text": TEXT, "schema": SCHEMA}
        missing = client.post("/v1/extract", json=body)
        wrong = client.post("/v1/extract", json=body, headers={"Authorization": "Bearer nope"})
        info = client.get("/v1/info")
        right = client.post("/v1/extract", json=body, headers={"Authorization": "Bearer s3cret"})
        page = client.get("/")
    assert missing.status_code == wrong.status_code == info.status_code == 401
    assert "API key" in missing.json()["detail"]
    assert right.status_code == 200
    assert page.status_code == 200  # the page itself holds no data; it asks for the key


def test_queue_full_and_timeout_are_503_with_retry_after(tiny_generator):
    gated = Gated(tiny_generator)
    with make_client(gated, max_queue=1, timeout_seconds=30) as client:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(client.post, "/v1/extract", json={"text": TEXT, "schema": SCHEMA})
            time.sleep(0.5)  # the first request holds the only place in the queue
            refused = client.post("/v1/extract", json={"text": TEXT, "schema": SCHEMA})
            gated.gate.set()
            assert first.result(30).status_code == 200
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert "max_queue" in refused.json()["detail"]
    gated = Gated(tiny_generator)
    with make_client(gated, timeout_seconds=0.3) as client:
        late = client.post("/v1/extract", json={"text": TEXT, "schema": SCHEMA})
        gated.gate.set()
    assert late.status_code == 503 and "timeout_seconds" in late.json()["detail"]


def test_concurrent_clients_are_batched_and_get_one_at_a_time_answers(tiny_generator):
    texts = [f"Person {i} works for Company {i} in City {i}." for i in range(8)]
    alone = Extractor(generator=tiny_generator)
    expected = [alone.extract(t, SCHEMA).to_dict() for t in texts]
    options = ServeOptions(batch_wait_ms=200)
    extractor = Extractor(generator=tiny_generator, options=options)
    with served(extractor, options) as (url, app):
        async def ask_all():
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                replies = await asyncio.gather(*[client.post("/v1/extract", json={"text": t, "schema": SCHEMA})
                                                 for t in texts])
                health = await client.get("/v1/health")
                return replies, health

        replies, health = asyncio.run(ask_all())
    assert [r.status_code for r in replies] == [200] * len(texts)
    assert [r.json()["results"][0] for r in replies] == expected
    assert health.json()["queued"] == 0
    assert 1 <= app.state.batcher.batches < len(texts)  # requests that arrived together shared a generation batch


def test_label_studio_ml_backend_protocol(scripted):
    """Label Studio's own request shapes (label config and task from its example project) in, predictions out."""
    import base64

    from conftest import DATA_DIR

    folder = DATA_DIR / "annotation-tools" / "label_studio"
    config = (folder / "named_entity_config.xml").read_text(encoding="utf-8")
    task = json.loads((folder / "named_entity_tasks_predictions.json").read_text(encoding="utf-8"))[0]
    task = {"id": 1, "data": task["data"]}  # what Label Studio sends: the task without its stored predictions
    text = task["data"]["text"]
    answers = {"Date": ["February 22", "early January"], "Location": ["Bahia"], "Person": ["Nobody Here"]}
    generator = scripted(lambda schema, _: json.dumps({k: answers.get(k, []) for k in schema}))
    key = "s3cret"
    basic = {"Authorization": "Basic " + base64.b64encode(f"user:{key}".encode()).decode()}
    with make_client(generator, api_key=key, adapter="runs/my-adapter") as client:
        assert client.get("/health").status_code == 401
        assert client.get("/health", headers=basic).json()["status"] == "UP"
        setup = client.post("/setup", json={"project": "3.1700000000", "schema": config}, headers=basic)
        reply = client.post("/predict", json={"tasks": [task], "label_config": config, "project": "3.1700000000",
                                              "params": {"context": {}}}, headers=basic)
        bad = client.post("/predict", json={"tasks": [task], "label_config": "<View/>"}, headers=basic)
    assert setup.json() == {"model_version": "my-adapter"}
    assert reply.status_code == 200, reply.text
    [prediction] = reply.json()["results"]
    assert prediction["model_version"] == "my-adapter"
    regions = prediction["result"]
    assert {(r["from_name"], r["to_name"], r["type"]) for r in regions} == {("ner", "text", "labels")}
    found = sorted((r["value"]["labels"][0], r["value"]["text"]) for r in regions)
    expected = sorted((label, value) for label, values in answers.items() for value in values
                      for _ in range(text.count(value)))  # every occurrence; "Nobody Here" is not in the text
    assert found == expected and ("Location", "Bahia") in found
    assert all(text[r["value"]["start"]:r["value"]["end"]] == r["value"]["text"] for r in regions)
    assert bad.status_code == 422 and "<Labels" in bad.json()["detail"]


def test_shutdown_answers_the_requests_already_accepted(tiny_generator):
    gated = Gated(tiny_generator)
    options = ServeOptions()
    with ThreadPoolExecutor(1) as pool:
        with served(Extractor(generator=gated, options=options), options) as (url, app):
            pending = pool.submit(httpx.post, url + "/v1/extract", json={"text": TEXT, "schema": SCHEMA}, timeout=60)
            for _ in range(100):  # accepted: waiting in the batcher
                if app.state.batcher.pending:
                    break
                time.sleep(0.05)
            assert app.state.batcher.pending == 1
            threading.Timer(0.5, gated.gate.set).start()  # generation may start once shutdown has begun
        # leaving `served` asked the server to exit and waited for it
        reply = pending.result(60)
    assert reply.status_code == 200 and reply.json()["results"][0]["text"] == TEXT
