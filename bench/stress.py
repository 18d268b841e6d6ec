"""Worker crashes under load, with the shipped gunicorn.conf.py and the collector on.

    .venv/bin/python bench/stress.py
    .venv/bin/python bench/stress.py --hash-seed 3 --requests 3000

Starts gunicorn (2 workers) on the 10k-record benchmark database (generated as bench/run.py
does), sends a mix of list, detail and timeline requests from 2 client threads, and counts
the workers that crashed (gunicorn logs "was sent SIGSEGV"), apart from other deaths such as
timeouts. CPython 3.11 crashed here when the collector ran while SQLAlchemy loaded rows (a
CPython bug, fixed in 3.12); the crash depended on the hash seed: run several seeds.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import run


def path_for(rng: random.Random, records: int) -> str:
    roll = rng.random()
    if roll < 0.3:
        return f"{run.API}/events?" + urlencode(run._filters(rng))
    if roll < 0.5:
        return f"{run.API}/events/{run.event_id(rng, records)}"
    if roll < 0.7:
        return f"{run.API}/timeline?page_size=100"
    if roll < 0.85:
        return f"{run.API}/decrees?sort=-date&page_size=200"
    return f"{run.API}/events?page_size=100&sort=title"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--hash-seed", default="1")
    parser.add_argument("--port", type=int, default=8795)
    args = parser.parse_args(argv)

    size = "10k"
    run.ensure_database("sqlite", size, 1, regenerate=False)
    config = run.PROJECT_DIR / "gunicorn.conf.py"
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "gunicorn.log"
        env = {
            **os.environ,
            "DATABASE_URL": run.database_for("sqlite", size),
            "PORT": str(args.port),
            "WEB_CONCURRENCY": "2",
            "PYTHONHASHSEED": args.hash_seed,
        }
        command = [str(run.VENV_BIN / "gunicorn"), "-c", str(config), "api:create_app()"]
        with log.open("wb") as out:
            server = subprocess.Popen(
                command, cwd=run.PROJECT_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            for _ in range(150):
                try:
                    run.get(args.port, "/healthz")
                    break
                except OSError:
                    time.sleep(0.2)
            latencies, failed = [], []
            lock = threading.Lock()

            def client(seed: int) -> None:
                rng = random.Random(seed)
                for _ in range(args.requests // 2):
                    path = path_for(rng, run.SIZES[size])
                    try:
                        response = run.get(args.port, path)
                    except OSError as error:
                        with lock:
                            failed.append(f"{path}: {error!r}")
                        continue
                    with lock:
                        if response.status == 200:
                            latencies.append(response.seconds)
                        else:
                            failed.append(f"{path}: HTTP {response.status}")

            started = time.perf_counter()
            threads = [threading.Thread(target=client, args=(i,)) for i in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=60)
        text = log.read_text()
        crashes = len(re.findall(r"was sent SIGSEGV", text))
        other_deaths = len(re.findall(r"was sent SIG(?!SEGV)|exited with code|TIMEOUT", text))
    stats = run.summarise(latencies, elapsed, failed)
    print(
        f"Python {sys.version.split()[0]}, hash seed {args.hash_seed}: {crashes} worker crashes "
        f"(SIGSEGV), {other_deaths} other worker deaths, "
        f"{len(failed)} failed of {args.requests} requests in {elapsed:.0f} s; "
        f"p50 {stats['p50_ms']} ms, p99 {stats['p99_ms']} ms"
    )


if __name__ == "__main__":
    sys.exit(main())
