"""Write latency at scale: a single-record PATCH under gunicorn, with its revision and its
change-feed entry, one after another.

    .venv/bin/python bench/generate.py --database-url postgresql://127.0.0.1:5432/bench_facts_1m \
        --records 1000000 --seed 1
    .venv/bin/python bench/writes.py --database-url postgresql://127.0.0.1:5432/bench_facts_1m

Serves the database (made by bench/generate.py; it is written to: every PATCH adds a
revision) with gunicorn as `make run` does, makes a curator token with `flask tokens create`,
POSTs one event citing a passage of a stored article, then --requests times: GET the event
(its ETag), PATCH its `summary` with If-Match (`application/merge-patch+json`, an
Edit-Summary), and checks the answer (200, a new ETag, a Dataset-Seq one past the last).
The synthetic records are not PATCHed: their dates and figures quote words that their
synthetic sources do not contain, so the write checks (rightly) refuse them whole. Only the
PATCH is timed: from sending it to the last byte of the answer, on a new connection, on
127.0.0.1 (the client shares the two cores with the server and the database). At the end,
/api/v1/changes must list every PATCH as an `updated` change, in order. Results: a line on
stdout, every latency in --out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import run  # noqa: E402  (the benchmark's server and HTTP client)

API = "/api/v1"


def request(port: int, method: str, path: str, body: bytes = b"", headers=None):
    """(status, headers, body, seconds) of one request on a new connection."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection(run.HOST, port, timeout=60)
    try:
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return response.status, dict(response.getheaders()), data, time.perf_counter() - started
    finally:
        connection.close()


def curator_token(database_url: str) -> str:
    result = subprocess.run(
        [str(run.VENV_BIN / "flask"), "--app", "api", "tokens", "create"]
        + ["--name", f"bench-writes-{os.getpid()}", "--role", "curator"],
        cwd=run.PROJECT_DIR,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def create_event(port: int, auth: dict, rng: random.Random) -> str:
    """A new event citing a passage of the first article: its path."""
    _, _, body, _ = request(port, "GET", f"{API}/articles?page_size=1")
    article_id = json.loads(body)[0]["id"]
    _, _, body, _ = request(port, "GET", f"{API}/articles/{article_id}")
    words = json.loads(body)["text"].split(" ")
    start = rng.randrange(len(words) - 30)
    quote = " ".join(words[start : start + 25])
    event = {
        "kind": "report",
        "title": f"bench/writes.py: the event it edits ({dt.datetime.now():%Y-%m-%d %H:%M:%S})",
        "summary": "What the quoted passage reports.",
        "sources": [{"article_id": article_id, "quote": quote}],
    }
    status, headers, body, _ = request(
        port,
        "POST",
        f"{API}/events",
        json.dumps(event).encode(),
        {**auth, "Content-Type": "application/json"},
    )
    if status != 201:
        raise RuntimeError(f"POST {API}/events: {status} {body[:300]!r}")
    return urlsplit(headers["Location"]).path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--manifest", type=Path, help="default: bench/generate.py's, beside it")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--log", type=Path, default=Path("/tmp/bench-writes-gunicorn.log"))
    args = parser.parse_args(argv)
    manifest = json.loads(
        (args.manifest or run.generate.default_manifest_path(args.database_url)).read_text()
    )
    records = manifest["records"]
    token = curator_token(args.database_url)
    rng = random.Random()  # a passage no earlier run's event cites (one passage, one fact)
    server = run.Server(args.database_url, args.port, args.log)
    server.start()
    latencies, seqs = [], []
    auth = {"Authorization": f"Bearer {token}"}
    try:
        path = create_event(args.port, auth, rng)
        for n in range(args.requests):
            status, headers, body, _ = request(args.port, "GET", path)
            if status != 200:
                raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
            patch = json.dumps({"summary": f"bench/writes.py edit {n} {rng.random()}"}).encode()
            status, answer, body, seconds = request(
                args.port,
                "PATCH",
                path,
                patch,
                {
                    **auth,
                    "Content-Type": "application/merge-patch+json",
                    "If-Match": headers["ETag"],
                    "Edit-Summary": "bench/writes.py",
                },
            )
            if status != 200 or answer["ETag"] == headers["ETag"]:
                raise RuntimeError(f"PATCH {path}: {status} {body[:300]!r}")
            seq = int(answer["Dataset-Seq"])
            if seqs and seq != seqs[-1] + 1:
                raise RuntimeError(f"PATCH {path}: Dataset-Seq {seq} after {seqs[-1]}")
            seqs.append(seq)
            latencies.append(seconds * 1000)
        since = seqs[0] - 1
        status, _, body, _ = request(
            args.port, "GET", f"{API}/changes?since={since}&page_size={args.requests}"
        )
        feed = json.loads(body)
        if [c["seq"] for c in feed] != seqs or {c["action"] for c in feed} != {"updated"}:
            raise RuntimeError("the change feed does not list the PATCHes as made")
    finally:
        server.stop()
    ordered = sorted(latencies)
    result = {
        "database": args.database_url,
        "records": records,
        "requests": args.requests,
        "p50_ms": round(run.percentile(ordered, 50), 1),
        "p99_ms": round(run.percentile(ordered, 99), 1),
        "max_ms": round(ordered[-1], 1),
        "mean_ms": round(statistics.fmean(ordered), 1),
        "latencies_ms": [round(x, 2) for x in latencies],
    }
    print(
        f"PATCH /events/{{id}} at {records:,} records ({args.database_url.split(':')[0]}): "
        f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms "
        f"(n={args.requests}); the feed lists all {len(seqs)} in order"
    )
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
