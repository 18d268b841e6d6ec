"""Search latency at scale: /api/v1/search under gunicorn, cold and warm, common and selective.

    .venv/bin/python bench/generate.py --database-url sqlite:////tmp/bsearch/s1m.sqlite3 \
        --records 1000000
    .venv/bin/python bench/search.py --database-url sqlite:////tmp/bsearch/s1m.sqlite3 \
        [--requests 100] [--port 8765] [--label after] [--out /tmp/bsearch/sqlite-after.json]
    .venv/bin/python bench/search.py \
        --database-url postgresql://127.0.0.1:5432/bench_facts_1m \
        --manifest /tmp/bsearch/pg1m.manifest.json

The database is one that bench/generate.py made (its manifest, beside a SQLite file or given
with --manifest, names the common word). For each scenario the server is started afresh
(`gunicorn 'api:create_app()'` from the project directory, so with the shipped
gunicorn.conf.py: 2 gevent workers), so that its first request is cold: no connection, no
cached count, nothing of the query in the workers (the OS page cache stays warm: it is not
ours to drop). Then --requests more, one after another, each on a new connection:

- common: `/search?q=<common word>` (~30 % of the facts), the same URL every time;
- common-pages: the common word, a random one of its first 40 pages (cursor) each time;
- common-deep: the common word at a random offset among all its hits each time;
- common-event: the common word with `type=event`, the same URL every time;
- selective: a random place word (~1 document in 10,000) each time, so never twice the same.

The figures are milliseconds from sending the request to the last byte of the answer, on
127.0.0.1; the client shares the cores with the server. Results: a table on stdout, and every
latency in --out (JSON) if given.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import run  # noqa: E402  (the benchmark's server and HTTP client)

from schemas.queries import encode_offset  # noqa: E402

API = "/api/v1"


def scenarios(common: str, common_hits: int, seed: int, rng: random.Random) -> dict:
    run.place_word(random.Random(0), seed)  # build the word list before timing anything
    base = f"{API}/search?q={quote(common)}"
    return {
        "common": lambda: base,
        "common-pages": lambda: f"{base}&cursor={encode_offset(50 * rng.randrange(1, 40))}",
        "common-deep": lambda: f"{base}&cursor={encode_offset(rng.randrange(common_hits))}",
        "common-event": lambda: f"{base}&type=event",
        "selective": lambda: f"{API}/search?q={run.place_word(rng, seed)}",
    }


def measure(port: int, path, requests: int) -> dict:
    def one(url: str) -> float:
        response = run.get(port, url)
        if response.status != 200:
            raise RuntimeError(f"{url}: {response.status} {response.body[:200]!r}")
        return response.seconds * 1000

    first_url = path()
    cold = one(first_url)
    warm = sorted(one(path()) for _ in range(requests))
    return {
        "first_url": first_url,
        "cold_ms": round(cold, 1),
        "warm_p50_ms": round(run.percentile(warm, 50), 1),
        "warm_p99_ms": round(run.percentile(warm, 99), 1),
        "warm_max_ms": round(warm[-1], 1),
        "warm_mean_ms": round(statistics.fmean(warm), 1),
        "all_p99_ms": round(run.percentile(sorted([cold, *warm]), 99), 1),
        "warm_ms": [round(x, 2) for x in warm],
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--manifest", type=Path, help="default: beside a SQLite database")
    parser.add_argument("--requests", type=int, default=100, help="warm requests per scenario")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--only", help="comma-separated scenario names")
    parser.add_argument("--label", default="")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--log", type=Path, default=Path("/tmp/bench-search-gunicorn.log"))
    args = parser.parse_args(argv)
    manifest = json.loads(
        (args.manifest or run.generate.default_manifest_path(args.database_url)).read_text()
    )
    rng = random.Random(1)
    samples = manifest["samples"]
    chosen = scenarios(
        samples["search_common"], samples["search_common_documents"], manifest["seed"], rng
    )
    if args.only:
        chosen = {name: chosen[name] for name in args.only.split(",")}
    results = {}
    for name, path in chosen.items():
        if not run.port_is_free(args.port):
            sys.exit(f"port {args.port} is busy")
        server = run.Server(args.database_url, args.port, args.log)
        server.start()
        try:
            time.sleep(1)  # let the workers settle after /healthz
            results[name] = measure(args.port, path, args.requests)
        finally:
            server.stop()
        r = results[name]
        print(
            f"{args.label:8} {name:18} cold {r['cold_ms']:8.1f}  warm p50 {r['warm_p50_ms']:7.1f}"
            f"  p99 {r['warm_p99_ms']:7.1f}  max {r['warm_max_ms']:7.1f}  (n={args.requests})",
            flush=True,
        )
    if args.out:
        record = {"database_url": args.database_url, "label": args.label, "results": results}
        args.out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
