"""Load test of ``iepile serve`` on loopback: 1, 4 and 16 concurrent clients, then a burst over the queue bound.

    python bench/serve.py [--data ../shared/data] [--model DIR] [--requests 48] [--clients 1,4,16]
                          [--burst 64 --burst-queue 8]

The service runs in this process (uvicorn in a thread, exactly what ``iepile serve`` starts) over the default model
(or ``--model``); each request is one CoNLL-2003 test sentence with the NER schema. For every client count the same
``--requests`` requests are sent, ``clients`` at a time: p50/p95/p99 latency, requests/s, and every status that was
not 200. The ratio is requests/s against 1 client (sequential) measured in the same run. The burst sends
``--burst`` requests at once to a service whose queue holds ``--burst-queue``: they must end as 200s and clean 503s
(no other status, no lost request), with the process's resident memory before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
SCHEMA = ["person", "location", "organization", "miscellaneous"]


def sentences(data: Path, count: int) -> list[str]:
    from iepile.data.formats import read_records
    from iepile.data.formats.base import ReadOptions, ReadStats

    records = read_records(data / "en/ner/conll2003/test.txt", "conll", ReadOptions(task="NER", language="en"),
                           ReadStats())
    texts = [r["text"] for r in records if len(r["text"].split()) >= 6]
    return texts[:count]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start(extractor, options):
    import uvicorn

    from iepile.serve.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        options.port = s.getsockname()[1]
    app = create_app(extractor, options)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=options.port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, app, f"http://127.0.0.1:{options.port}"


async def load(url: str, texts: list[str], clients: int) -> dict:
    import httpx

    latencies, statuses = [], {}
    queue: asyncio.Queue = asyncio.Queue()
    for text in texts:
        queue.put_nowait(text)

    async def client(http):
        while not queue.empty():
            text = queue.get_nowait()
            started = time.perf_counter()
            response = await http.post("/v1/extract", json={"text": text, "task": "NER", "schema": SCHEMA})
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        await asyncio.gather(*[client(http) for _ in range(clients)])
    seconds = time.perf_counter() - started
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {"clients": clients, "requests": len(texts), "seconds": round(seconds, 2),
            "requests_per_s": round(len(texts) / seconds, 3), "p50_s": pct(0.5), "p95_s": pct(0.95),
            "p99_s": pct(0.99), "mean_s": round(statistics.mean(latencies), 3), "statuses": statuses}


async def burst(url: str, texts: list[str]) -> dict:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        replies = await asyncio.gather(*[http.post("/v1/extract", json={"text": t, "task": "NER", "schema": SCHEMA})
                                         for t in texts], return_exceptions=True)
    statuses: dict = {}
    for reply in replies:
        key = type(reply).__name__ if isinstance(reply, Exception) else reply.status_code
        statuses[key] = statuses.get(key, 0) + 1
    retry_after = all(r.headers.get("Retry-After") for r in replies
                      if not isinstance(r, Exception) and r.status_code == 503)
    return {"requests": len(texts), "statuses": statuses, "every_503_has_retry_after": retry_after}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--model", default=None)
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--burst", type=int, default=64)
    parser.add_argument("--burst-queue", type=int, default=8)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "serve.json")
    args = parser.parse_args()

    from iepile.inference.extract import Extractor
    from iepile.serve.options import ServeOptions

    texts = sentences(args.data, max(args.requests, args.burst))
    options = ServeOptions(model=args.model, batch_size=args.batch_size, max_new_tokens=96, max_queue=10_000,
                           timeout_seconds=3600)
    extractor = Extractor(options=options)
    extractor.generator  # load once; shared by every run below
    server, thread, app, url = start(extractor, options)
    asyncio.run(load(url, texts[:4], 4))  # warm-up
    runs = []
    for clients in (int(c) for c in args.clients.split(",")):
        run = asyncio.run(load(url, texts[:args.requests], clients))
        runs.append(run)
        print(f"{clients:3d} clients: {run['requests_per_s']:6.2f} req/s  p50 {run['p50_s']:.2f}s  "
              f"p95 {run['p95_s']:.2f}s  p99 {run['p99_s']:.2f}s  statuses {run['statuses']}", flush=True)
    server.should_exit = True
    thread.join()
    for run in runs:
        run["ratio_vs_1_client"] = round(run["requests_per_s"] / runs[0]["requests_per_s"], 2)

    burst_options = ServeOptions(model=args.model, batch_size=args.batch_size, max_new_tokens=96,
                                 max_queue=args.burst_queue, timeout_seconds=3600)
    server, thread, app, url = start(Extractor(generator=extractor.generator, options=burst_options), burst_options)
    before = rss_mb()
    result = asyncio.run(burst(url, texts[:args.burst]))
    result.update(rss_mb_before=round(before, 1), rss_mb_after=round(rss_mb(), 1), queue=args.burst_queue)
    print(f"burst of {args.burst} at queue {args.burst_queue}: {result['statuses']}, RSS {result['rss_mb_before']} "
          f"→ {result['rss_mb_after']} MB", flush=True)
    server.should_exit = True
    thread.join()

    import torch

    report = {"machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "python": platform.python_version(), "torch": torch.__version__},
              "model": args.model or "default (SmolLM2-135M-Instruct)", "schema": SCHEMA,
              "batch_size": args.batch_size, "runs": runs, "burst": result}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({r["clients"]: r["ratio_vs_1_client"] for r in runs}), file=sys.stderr)


if __name__ == "__main__":
    main()
