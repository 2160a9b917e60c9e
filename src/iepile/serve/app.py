"""The HTTP routes of ``iepile serve`` over one :class:`~iepile.inference.extract.Extractor`.

Errors are JSON ``{"detail": "..."}`` naming the field and the limit: 401 without the API key, 413 for a body over
``max_body_bytes``, 422 for a malformed request or one over a bound, 503 with ``Retry-After`` when the queue is full,
the request timed out or the service is stopping. Nothing in a request names a file or a model.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, Optional, Union

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from iepile import __version__
from iepile.inference.exports import model_version
from iepile.serve.batcher import MicroBatcher, QueueFull, Stopping
from iepile.serve.label_studio import parse_label_config, predictions
from iepile.serve.options import API_KEY_ENV, ServeOptions


class ExtractRequest(BaseModel):
    """``text`` is one text or a list; ``schema`` takes the forms ``iepile extract --schema`` takes."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    text: Union[str, list[str]]
    task: str = "NER"
    labels: Union[list, dict] = Field(alias="schema")
    language: Optional[str] = None


class GlinerRequest(BaseModel):
    """GLiNER's ``predict_entities(text, labels, threshold)`` as a request."""

    text: str
    labels: list[str]
    threshold: float = 0.5
    flat_ner: bool = True


def create_app(extractor, options: ServeOptions) -> FastAPI:
    """The service: ``extractor`` answers, ``options`` bounds what a request may ask."""
    api_key = options.api_key or os.environ.get(API_KEY_ENV) or None
    batcher: dict[str, MicroBatcher] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher["it"] = app.state.batcher = MicroBatcher(extractor, wait_ms=options.batch_wait_ms,
                                                         max_prompts=options.max_batch_prompts,
                                                         max_queue=options.max_queue)
        yield
        await asyncio.get_running_loop().run_in_executor(None, batcher["it"].close, options.timeout_seconds)

    app = FastAPI(title="iepile", version=__version__, lifespan=lifespan,
                  description="Schema-based information extraction with an IEPile-style model.")
    if options.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=options.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])

    @app.middleware("http")
    async def bounded_body(request: Request, call_next):
        declared = request.headers.get("content-length")
        too_big = f"request body over max_body_bytes ({options.max_body_bytes} bytes)"
        if declared and declared.isdigit() and int(declared) > options.max_body_bytes:
            return JSONResponse({"detail": too_big}, status_code=413)
        if request.method == "POST":
            body = await request.body()
            if len(body) > options.max_body_bytes:
                return JSONResponse({"detail": too_big}, status_code=413)
        return await call_next(request)

    def authorized(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() == "basic":  # Label Studio's ML-backend connection: basic auth, the key as password
            import base64
            import binascii

            try:
                token = base64.b64decode(token).decode("utf-8").partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                token = ""
        elif scheme.lower() != "bearer":
            token = ""
        if not token or not hmac.compare_digest(token.encode(), api_key.encode()):
            raise HTTPException(401, "missing or wrong API key: send Authorization: Bearer <key> (or basic auth "
                                     "with the key as password)",
                                headers={"WWW-Authenticate": "Bearer"})

    def check_bounds(texts: list[str], labels: Any) -> None:
        if not texts:
            raise HTTPException(422, "text: give at least one text")
        if len(texts) > options.max_texts:
            raise HTTPException(422, f"text: {len(texts)} texts, over max_texts ({options.max_texts})")
        for number, text in enumerate(texts):
            if not text.strip():
                raise HTTPException(422, f"text[{number}]: empty text")
            if len(text) > options.max_text_chars:
                raise HTTPException(422, f"text[{number}]: {len(text)} characters, over max_text_chars "
                                         f"({options.max_text_chars})")
        if len(labels) > options.max_schema_items:
            raise HTTPException(422, f"schema: {len(labels)} items, over max_schema_items "
                                     f"({options.max_schema_items})")

    async def run(texts: list[str], labels: Any, task: str, language: Optional[str]) -> list:
        try:
            return await batcher["it"].extract(texts, labels, task, language, options.timeout_seconds)
        except QueueFull:
            raise HTTPException(503, f"busy: {options.max_queue} requests already waiting (max_queue)",
                                headers={"Retry-After": "1"}) from None
        except Stopping:
            raise HTTPException(503, "the service is shutting down", headers={"Retry-After": "5"}) from None
        except asyncio.TimeoutError:
            raise HTTPException(503, f"not answered within timeout_seconds ({options.timeout_seconds:g})",
                                headers={"Retry-After": "5"}) from None
        except ValueError as error:
            raise HTTPException(422, f"schema: {error}") from None

    @app.post("/v1/extract", dependencies=[Depends(authorized)])
    async def extract(body: ExtractRequest) -> dict:
        """The same JSON as ``iepile extract``: one result per text (merged answer, items with offsets)."""
        texts = [body.text] if isinstance(body.text, str) else body.text
        check_bounds(texts, body.labels)
        results = await run(texts, body.labels, body.task, body.language)
        return {"results": [result.to_dict() for result in results]}

    @app.post("/v1/gliner", dependencies=[Depends(authorized)])
    async def gliner(body: GlinerRequest) -> dict:
        """GLiNER-compatible NER: ``entities: [{start, end, text, label, score}]``, one per occurrence in the text.
        iepile's answers are generated, not scored: ``score`` is 1.0 and ``threshold`` is not used."""
        check_bounds([body.text], body.labels)
        result = (await run([body.text], body.labels, "NER", None))[0]
        entities = []
        for item in result.items:
            for span in item.spans:
                for start, end in span["offsets"]:
                    entities.append({"start": start, "end": end, "text": body.text[start:end], "label": item.label,
                                     "score": 1.0})
        entities.sort(key=lambda e: (e["start"], e["end"], e["label"]))
        return {"entities": entities}

    @app.get("/v1/health", dependencies=[Depends(authorized)])
    async def health() -> dict:
        return {"status": "ok", "queued": batcher["it"].pending if "it" in batcher else 0}

    @app.get("/v1/info", dependencies=[Depends(authorized)])
    async def info() -> dict:
        return {"version": __version__, "model": options.model or "default (SmolLM2-135M-Instruct)",
                "adapter": options.adapter, "template": options.template,
                "decoding": {"constrain": options.constrain, "threshold": options.threshold,
                             "max_new_tokens": options.max_new_tokens, "batch_size": options.batch_size},
                "limits": options.limits(), "api_key_required": api_key is not None}

    # -- Label Studio's ML-backend protocol (serve/label_studio.py) ---------------------------------------------------
    version = model_version(options.model, options.adapter)

    @app.get("/health", dependencies=[Depends(authorized)])
    async def label_studio_health() -> dict:
        return {"status": "UP", "model_class": "iepile"}

    @app.post("/setup", dependencies=[Depends(authorized)])
    async def label_studio_setup(body: dict) -> dict:
        try:
            parse_label_config(str(body.get("schema") or body.get("label_config") or ""))
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        return {"model_version": version}

    @app.post("/predict", dependencies=[Depends(authorized)])
    async def label_studio_predict(body: dict) -> dict:
        try:
            config = parse_label_config(str(body.get("label_config") or ""))
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        tasks = body.get("tasks")
        if not isinstance(tasks, list) or not tasks:
            raise HTTPException(422, "tasks: give a list of Label Studio tasks")
        texts = []
        for number, task in enumerate(tasks):
            text = (task.get("data") or {}).get(config.data_key) if isinstance(task, dict) else None
            if not isinstance(text, str):
                raise HTTPException(422, f"tasks[{number}].data.{config.data_key}: no text")
            texts.append(text)
        check_bounds(texts, config.labels)
        results = await run(texts, config.labels, "NER", None)
        return {"results": predictions(results, config, version)}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return resources.files("iepile.serve").joinpath("page.html").read_text(encoding="utf-8")

    return app
