"""Every setting of ``iepile serve``: the extractor's (model, decoding, windows) and the service's own bounds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from iepile.config import opt
from iepile.inference.extract import ExtractOptions

API_KEY_ENV = "IEPILE_API_KEY"


@dataclass
class ServeOptions(ExtractOptions):
    """Every setting of ``iepile serve`` (the command is built from these fields)."""

    host: str = opt("127.0.0.1", "Address to bind (loopback by default; 0.0.0.0 exposes the service).")
    port: int = opt(8000, "Port to listen on.")
    api_key: Optional[str] = opt(None, f"Require `Authorization: Bearer KEY` on every /v1 call (or set "
                                 f"{API_KEY_ENV}).")
    cors_origins: Optional[list[str]] = opt(None, "Origins allowed to call the API from a browser (comma-separated; "
                                            "default: none).")
    max_body_bytes: int = opt(1_000_000, "Largest request body (413 above).")
    max_text_chars: int = opt(20_000, "Most characters of one text (422 above; long texts are windowed, not cut).")
    max_texts: int = opt(64, "Most texts in one request (422 above).")
    max_schema_items: int = opt(64, "Most labels, relations or event types in one schema (422 above).")
    max_queue: int = opt(64, "Most requests waiting or running; more get 503 with Retry-After.")
    timeout_seconds: float = opt(120.0, "A request not answered by then gets 503 with Retry-After.")
    batch_wait_ms: float = opt(10.0, "How long the first request of a batch waits for others to join it.")
    max_batch_prompts: int = opt(256, "Most prompts (texts × windows × schema groups) answered in one batch.")

    def validate(self) -> None:
        super().validate()
        for name in ("max_body_bytes", "max_text_chars", "max_texts", "max_schema_items", "max_queue",
                     "max_batch_prompts"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.timeout_seconds:
            raise ValueError(f"--timeout-seconds must be positive, got {self.timeout_seconds}")
        if self.batch_wait_ms < 0:
            raise ValueError(f"--batch-wait-ms must be at least 0, got {self.batch_wait_ms}")
        if not 0 < self.port < 65536:
            raise ValueError(f"--port must be 1-65535, got {self.port}")

    def limits(self) -> dict:
        """The bounds a client may want to know (``GET /v1/info``)."""
        return {name: getattr(self, name) for name in ("max_body_bytes", "max_text_chars", "max_texts",
                                                       "max_schema_items", "max_queue", "timeout_seconds",
                                                       "max_batch_prompts")}
