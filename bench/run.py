"""The benchmark: the real server under gunicorn on synthetic databases of 10k, 100k, 1M records.

    .venv/bin/python bench/run.py                       # every size on SQLite and PostgreSQL
    .venv/bin/python bench/run.py --sizes 10k --backends sqlite
    .venv/bin/python bench/run.py --report              # only rebuild the tables from results

For each backend and size it generates the database (bench/generate.py; cached under
bench/results/db/ and in PostgreSQL databases bench_facts_<size>, rebuilt when the schema or the
generator changes), starts `gunicorn --workers 2 --bind 127.0.0.1:PORT 'api:create_app()'` on
it, waits for /healthz, and measures each scenario twice:

- latency: one client, requests one after another (what one request costs);
- load: CONCURRENCY client threads at once (throughput, and latency with queueing).

Each phase is bounded in requests and in seconds (whichever comes first). The client shares the
machine's cores with the server. Traffic goes to 127.0.0.1 only. Results: one JSON file per
backend and size in bench/results/, and the Markdown tables in bench/results/report.md.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import json
import math
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode, urlsplit

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
DB_DIR = RESULTS / "db"
LOG_DIR = RESULTS / "logs"
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"  # the only host this benchmark ever talks to

SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
BACKENDS = ("sqlite", "postgresql")
PG_SERVER = "postgresql://127.0.0.1:5432"
WORKERS = 2
API = "/api/v1"

# Targets of the issue (at 1M records)
TARGET_P99_MS = 50.0
TARGET_CURSOR_RATIO = 1.5
TARGET_RSS_MB = 200.0

sys.path.insert(0, str(BENCH_DIR))
import generate  # noqa: E402

# HTTP ---------------------------------------------------------------------------------------


class Response:
    __slots__ = ("status", "headers", "body", "seconds")

    def __init__(self, status, headers, body, seconds):
        self.status, self.headers, self.body, self.seconds = status, headers, body, seconds


def get(
    port: int, path: str, headers: dict | None = None, timeout: float = 120, method: str = "GET"
) -> Response:
    started = time.perf_counter()
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        body = response.read()
        return Response(
            response.status, dict(response.getheaders()), body, time.perf_counter() - started
        )
    finally:
        connection.close()


@contextmanager
def held_connections(port: int, partial: int, idle: int) -> Iterator[Callable[[], int]]:
    """`partial` connections whose request headers never end and `idle` ones that send
    nothing, held open to 127.0.0.1:port; yields a count of those the server has answered or
    closed so far (a server that drops slow clients shows there)."""
    held: list[socket.socket] = []

    def answered_or_closed() -> int:
        count = 0
        for sock in held:
            sock.setblocking(False)  # a socket with a timeout would wait for data first
            try:
                sock.recv(1, socket.MSG_PEEK)
                count += 1  # an answer (an error) or the end of the stream
            except BlockingIOError:
                pass
            except OSError:
                count += 1
        return count

    try:
        for index in range(partial + idle):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            if index < partial:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never end
            held.append(sock)
        yield answered_or_closed
    finally:
        for sock in held:
            sock.close()


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values) - 1e-9)))
    return sorted_values[rank - 1]


def summarise(latencies: list[float], elapsed: float, errors: list[str]) -> dict:
    ms = sorted(x * 1000 for x in latencies)
    return {
        "requests": len(ms),
        "errors": len(errors),
        "error_samples": errors[:5],
        "seconds": round(elapsed, 3),
        "rps": round(len(ms) / elapsed, 1) if elapsed > 0 else None,
        "p50_ms": round(percentile(ms, 50), 2) if ms else None,
        "p90_ms": round(percentile(ms, 90), 2) if ms else None,
        "p99_ms": round(percentile(ms, 99), 2) if ms else None,
        "max_ms": round(ms[-1], 2) if ms else None,
        "mean_ms": round(statistics.fmean(ms), 2) if ms else None,
        "samples_ms": [round(x, 2) for x in ms],
    }


def run_phase(port, paths, expect, headers, threads, max_requests, max_seconds) -> dict:
    """`threads` clients, each sending requests back to back, until either bound is reached."""
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    issued = 0
    started = time.perf_counter()
    deadline = started + max_seconds

    def client(seed: int):
        nonlocal issued
        rng = random.Random(seed)
        while True:
            with lock:
                if issued >= max_requests or time.perf_counter() >= deadline:
                    return
                issued += 1
            path = paths(rng)
            try:
                response = get(port, path, headers)
            except (OSError, http.client.HTTPException) as error:
                with lock:
                    errors.append(f"{path}: {error!r}")
                continue
            with lock:
                if response.status != expect:
                    errors.append(f"{path}: HTTP {response.status} {response.body[:300]!r}")
                else:
                    latencies.append(response.seconds)

    pool = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return summarise(latencies, time.perf_counter() - started, errors)


# The server -------------------------------------------------------------------------------------


class Server:
    """gunicorn, as `make run` starts it, on a database of our choosing."""

    def __init__(self, database_url: str, port: int, log: Path, extra: list[str] = ()):
        self.database_url, self.port, self.log, self.extra = database_url, port, log, list(extra)
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return [
            str(VENV_BIN / "gunicorn"),
            "--workers",
            str(WORKERS),
            "--bind",
            f"{HOST}:{self.port}",
            *self.extra,
            "api:create_app()",
        ]

    def start(self) -> None:
        env = {**os.environ, "DATABASE_URL": self.database_url}
        env.pop("FLASK_DEBUG", None)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            log.write(
                f"\n=== {dt.datetime.now().isoformat()} {' '.join(self.command())}\n".encode()
            )
        self.process = subprocess.Popen(
            self.command(),
            cwd=PROJECT_DIR,
            env=env,
            stdout=open(self.log, "ab"),  # noqa: SIM115 (the child keeps it)
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log}")
            try:
                if (
                    get(self.port, "/healthz", timeout=5).status == 200
                    and len(self.workers()) == WORKERS
                ):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /healthz; see {self.log}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # the master we started, by its pid
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def workers(self) -> list[int]:
        if not self.process:
            return []
        pid = self.process.pid
        try:
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []

    def log_position(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def log_since(self, position: int) -> str:
        with open(self.log, "rb") as log:
            log.seek(position)
            return log.read().decode(errors="replace")


TROUBLE = re.compile(r"Traceback|WORKER TIMEOUT|was sent SIG\w+|Fatal Python error")


def trouble_counts(log: str) -> dict[str, int]:
    """What went wrong in the server, from its log: tracebacks, timeouts, crashed workers."""
    counts: dict[str, int] = {}
    for match in TROUBLE.finditer(log):
        key = match.group(0)
        counts[key] = counts.get(key, 0) + 1
    return counts


def memory_kb(pid: int) -> dict[str, int]:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {k: int(v.split()[0]) for k, v in re.findall(r"^(VmRSS|VmHWM):\s+(.+)$", status, re.M)}


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((HOST, port)) != 0


# Databases ---------------------------------------------------------------------------------------


def database_for(backend: str, size: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{DB_DIR / f'sqlite-{size}.sqlite3'}"
    return f"{PG_SERVER}/bench_facts_{size}"


def cached_manifest(url: str, records: int, seed: int) -> dict | None:
    """The manifest of an up-to-date generated database at `url`, or None."""
    path = generate.default_manifest_path(url)
    if not path.exists():
        return None
    manifest = json.loads(path.read_text())
    if (
        manifest.get("records") != records
        or manifest.get("seed") != seed
        or manifest.get("generator_version") != generate.GENERATOR_VERSION
        or manifest.get("code_fingerprint") != generate.code_fingerprint()
    ):
        return None
    from sqlalchemy import create_engine, text

    from api.config import database_url

    try:
        engine = create_engine(database_url(url))
        with engine.connect() as connection:
            facts = connection.execute(text("SELECT count(*) FROM facts")).scalar()
            revision = connection.execute(
                text("SELECT revision FROM dataset_state WHERE id = 1")
            ).scalar()
        engine.dispose()
    except Exception:  # noqa: BLE001 (no such database, or no such table: regenerate)
        return None
    return manifest if facts == records and revision == 1 else None


def ensure_database(
    backend: str, size: str, seed: int, regenerate: bool, reuse: bool = False
) -> dict:
    url = database_for(backend, size)
    records = SIZES[size]
    if reuse and (path := generate.default_manifest_path(url)).exists():
        print(f"[{backend} {size}] reusing {url}, migrated (--reuse-database)", flush=True)
        subprocess.run(
            [str(VENV_BIN / "flask"), "--app", "api", "db", "upgrade"],
            cwd=PROJECT_DIR,
            env={**os.environ, "DATABASE_URL": url},
            check=True,
        )
        return json.loads(path.read_text())
    if not regenerate and (manifest := cached_manifest(url, records, seed)):
        print(f"[{backend} {size}] reusing {manifest['database']}", flush=True)
        return manifest
    print(f"[{backend} {size}] generating {records:,} records into {url}", flush=True)
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(BENCH_DIR / "generate.py"),
            "--database-url",
            url,
            "--records",
            str(records),
            "--seed",
            str(seed),
            "--replace",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    manifest = json.loads(generate.default_manifest_path(url).read_text())
    print(f"[{backend} {size}] generated in {time.perf_counter() - started:.0f} s", flush=True)
    return manifest


def postgres_reads(database: str) -> dict[str, int]:
    """Rows read so far from each table, from pg_stat_user_tables (sequential + by index)."""
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/{database}", autocommit=True) as connection:
        connection.execute("SELECT pg_stat_clear_snapshot()")
        rows = connection.execute(
            "SELECT relname, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0), "
            "coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables"
        ).fetchall()
    return {f"{name}.rows": n for name, n, _ in rows} | {f"{name}.scans": s for name, _, s in rows}


# Scenarios ---------------------------------------------------------------------------------------


class Limits:
    def __init__(self, scale: float):
        self.latency_requests = int(100 * scale)
        self.latency_seconds = 8 * scale
        self.load_requests = int(400 * scale)
        self.load_seconds = 10 * scale


def event_id(rng: random.Random, records: int) -> str:
    """A random event of the generated database (see generate.TYPE_PATTERN)."""
    events = generate.RESIDUES["event"]
    while True:
        index = rng.randrange(records // 20) * 20 + rng.choice(events)
        if index < records:
            return generate.fact_id(index)


def _filters(rng: random.Random) -> dict:
    """A random event kind and two-month window: mostly a different query each time."""
    from schemas.facts import EVENT_KINDS

    month = rng.randrange(2010 * 12, 2025 * 12 + 11)
    last = month + 1
    return {
        "kind": rng.choice(EVENT_KINDS),
        "date_from": f"{month // 12}-{month % 12 + 1:02d}",
        "date_to": f"{last // 12}-{last % 12 + 1:02d}",
    }


_PLACES: list[str] = []


def place_word(rng: random.Random, seed: int) -> str:
    """One of generate.py's 20,000 place words (each in ~1 of 10,000 records)."""
    if not _PLACES:
        _PLACES.extend(generate.Vocabulary(random.Random(seed)).places)
    return rng.choice(_PLACES)


def scenarios(manifest: dict, cursor_path: str, page: int, records: int) -> list[dict]:
    samples = manifest["samples"]
    seed = manifest["seed"]
    fixed = {"kind": "protest", "date_from": "2022-09", "date_to": "2022-10"}
    place_word(random.Random(0), seed)  # build the list before timing anything
    return [
        {
            "name": "detail",
            "label": "detail (`/events/{id}`, random ids)",
            "paths": lambda rng: f"{API}/events/{event_id(rng, records)}",
        },
        {"name": "list_first", "label": "first list page (`/events`)", "path": f"{API}/events"},
        {
            "name": "list_filtered",
            "label": "filtered list (`/events?kind=…&date_from=…&date_to=…`, random kind and "
            "two-month window)",
            "paths": lambda rng: f"{API}/events?" + urlencode(_filters(rng)),
        },
        {
            "name": "list_filtered_same",
            "label": "filtered list, one URL repeated (`/events?kind=protest&date_from=2022-09"
            "&date_to=2022-10`) †",
            "path": f"{API}/events?" + urlencode(fixed),
            "extra": True,
        },
        {
            "name": "cursor_page_1000",
            "label": "1,000th page by cursor (`/events?cursor=…`)"
            if page == 1000
            else f"deepest page by cursor: page {page} (`/events?cursor=…`)",
            "path": cursor_path,
        },
        {
            "name": "search",
            "label": "search, selective (`/search?q=…`, a random place word: ~1 hit per 10,000 "
            "records)",
            "paths": lambda rng: f"{API}/search?q={place_word(rng, seed)}",
        },
        {
            "name": "search_typed",
            "label": "search of one type, selective (`/search?q=…&type=event`, a random place "
            "word) †",
            "paths": lambda rng: f"{API}/search?q={place_word(rng, seed)}&type=event",
            "extra": True,
        },
        {
            "name": "list_q",
            "label": "list filtered by text (`/events?q=…`, a random place word) †",
            "paths": lambda rng: f"{API}/events?q={place_word(rng, seed)}",
            "extra": True,
        },
        {
            "name": "search_common",
            "label": f"search, common word (`/search?q={samples['search_common']}`) †",
            "path": f"{API}/search?q={samples['search_common']}",
            "extra": True,
            "cap": 4,
        },
        {
            "name": "list_actor",
            "label": f"filtered by actor (`/events?actor={samples['actor_mid']}`) †",
            "path": f"{API}/events?actor={samples['actor_mid']}",
            "extra": True,
            "cap": 4,
        },
        {
            "name": "timeline",
            "label": "timeline, first page (`/timeline`)",
            "path": f"{API}/timeline",
        },
        {
            "name": "facets",
            "label": "facets (`/events/facets`: kind, year, article, actor)",
            "path": f"{API}/events/facets",
        },
        {
            "name": "facets_filtered",
            "label": "facets of a filtered list (`/events/facets?kind=…&date_from=…`, random) †",
            "paths": lambda rng: f"{API}/events/facets?" + urlencode(_filters(rng)),
            "extra": True,
            "cap": 4,
        },
    ]


def walk_cursor(port: int, pages: int) -> tuple[str, dict]:
    """Follow `next` links from /events page 1 to page `pages` (or the last page, if fewer)."""
    path = f"{API}/events"
    seconds = []
    page = 1
    failures = []
    while page < pages:
        for _attempt in range(3):  # a worker that dies mid-request drops the connection
            try:
                response = get(port, path)
                break
            except (OSError, http.client.HTTPException) as error:
                failures.append(f"page {page}: {error!r}")
        else:
            raise RuntimeError(f"{path}: failed 3 times: {failures[-3:]}")
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status} {response.body[:300]!r}")
        match = re.search(r'<([^>]+)>; rel="next"', response.headers.get("Link", ""))
        if not match:
            break
        seconds.append(response.seconds)
        url = urlsplit(match.group(1))
        path = f"{url.path}?{url.query}"
        page += 1
    stats = summarise(seconds, sum(seconds), [])
    return path, {"page": page, "pages_walked": len(seconds), "failures": failures, **stats}


def cursor_offset(path: str) -> str:
    query = dict(p.split("=", 1) for p in urlsplit(path).query.split("&"))
    raw = query["cursor"]
    return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()


def measure_export(server: Server, path: str, timeout: float) -> dict:
    """Download the whole export once; sample the workers' memory while it streams."""
    workers = server.workers()
    before = {pid: memory_kb(pid) for pid in workers}
    peak = {pid: 0 for pid in workers}
    done = threading.Event()

    def sample():
        while not done.is_set():
            for pid in workers:
                peak[pid] = max(peak[pid], memory_kb(pid).get("VmRSS", 0))
            done.wait(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    log_at = server.log_position()
    result: dict = {"path": path}
    started = time.perf_counter()
    connection = http.client.HTTPConnection(HOST, server.port, timeout=timeout)
    size, lines = 0, 0
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        result["status"] = response.status
        result["etag"] = response.getheader("ETag")
        result["first_byte_s"] = round(time.perf_counter() - started, 3)
        while chunk := response.read(1 << 20):
            size += len(chunk)
            lines += chunk.count(b"\n")
        result["complete"] = True
    except (OSError, http.client.HTTPException) as error:
        result["complete"] = False
        result["error"] = repr(error)
    finally:
        connection.close()
        result["seconds"] = round(time.perf_counter() - started, 2)
        done.set()
        sampler.join()
    after = {pid: memory_kb(pid) for pid in workers}
    result.update(
        bytes=size,
        rows=max(0, lines - 1),
        mb_per_s=round(size / 1e6 / result["seconds"], 2) if result["seconds"] else None,
        rows_per_s=round(max(0, lines - 1) / result["seconds"]) if result["seconds"] else None,
        workers={
            str(pid): {
                "rss_before_mb": round(before[pid].get("VmRSS", 0) / 1024, 1),
                "rss_peak_mb": round(peak[pid] / 1024, 1),
                "hwm_after_mb": round(after[pid].get("VmHWM", 0) / 1024, 1) if after[pid] else None,
                "alive_after": bool(after[pid]),
            }
            for pid in workers
        },
    )
    result["rss_peak_mb"] = max((w["rss_peak_mb"] for w in result["workers"].values()), default=0)
    log = server.log_since(log_at)
    if TROUBLE.search(log):
        result["server_log"] = log[-4000:]
        result["server_trouble"] = trouble_counts(log)
    return result


def app_fingerprint() -> str:
    """A digest of the application code measured (it changes while the project moves)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted([*PROJECT_DIR.glob("api/**/*.py"), *PROJECT_DIR.glob("schemas/*.py")]):
        digest.update(str(path.relative_to(PROJECT_DIR)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def one_run(backend: str, size: str, args) -> dict:
    manifest = ensure_database(backend, size, args.seed, args.regenerate, args.reuse_database)
    records = SIZES[size]
    url = database_for(backend, size)
    log = LOG_DIR / f"gunicorn-{backend}-{size}.log"
    log.unlink(missing_ok=True)
    server = Server(url, args.port, log)
    limits = Limits(args.scale)
    result = {
        "backend": backend,
        "size": size,
        "records": records,
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "generation": {
            "seconds": manifest["seconds"],
            "counts": manifest["counts"],
            "samples": manifest["samples"],
        },
        "server": " ".join(server.command()),
        "app_code": app_fingerprint(),
        "concurrency": args.concurrency,
        "limits": vars(limits),
        "load_average_before": os.getloadavg(),
        "scenarios": {},
    }
    server.start()
    try:
        result["worker_rss_start_mb"] = [
            round(memory_kb(pid).get("VmRSS", 0) / 1024, 1) for pid in server.workers()
        ]
        print(f"[{backend} {size}] walking 999 next links", flush=True)
        cursor_path, walk = walk_cursor(args.port, 1000)
        result["cursor_walk"] = {**walk, "cursor": cursor_offset(cursor_path)}
        print(
            f"[{backend} {size}]   to page {walk['page']}: {walk['seconds']:.1f} s, "
            f"p50 {walk['p50_ms']} ms per page",
            flush=True,
        )
        for scenario in scenarios(manifest, cursor_path, walk["page"], records):
            if args.only and scenario["name"] not in args.only:
                continue
            paths = scenario.get("paths") or (lambda _rng, p=scenario["path"]: p)
            log_at = server.log_position()
            # The first request shows the cold cost: the app keeps per-worker caches of
            # counts and facets (api/store.py RevisionCache), which the repeats then hit.
            cold = None
            for attempt in range(3):  # warm-up, not counted in the phases
                try:
                    response = get(args.port, paths(random.Random(0)))
                    if attempt == 0:
                        cold = {"ms": round(response.seconds * 1000, 1), "status": response.status}
                except (OSError, http.client.HTTPException) as error:
                    if attempt == 0:
                        cold = {"ms": None, "error": repr(error)}
            cap = scenario.get("cap", 10**9)  # the extras that take seconds: a few requests
            latency = run_phase(
                args.port,
                paths,
                200,
                None,
                1,
                min(cap, limits.latency_requests),
                limits.latency_seconds,
            )
            if (latency["p50_ms"] or 0) > 5000:
                # seconds per request: 2 workers answer 2 at a time, clients would time out
                load = {**summarise([], 0, []), "skipped": "one request takes over 5 s"}
            else:
                load = run_phase(
                    args.port,
                    paths,
                    200,
                    None,
                    args.concurrency,
                    min(2 * cap, limits.load_requests),
                    limits.load_seconds,
                )
            entry = {
                "label": scenario["label"],
                "path": scenario.get("path") or paths(random.Random(0)),
                "extra": scenario.get("extra", False),
                "cold": cold,
                "load_average_after": os.getloadavg(),
                "latency": latency,
                "load": load,
            }
            server_log = server.log_since(log_at)
            if TROUBLE.search(server_log):
                entry["server_log"] = server_log[-4000:]
                entry["server_trouble"] = trouble_counts(server_log)
            result["scenarios"][scenario["name"]] = entry
            if latency["errors"] or load["errors"]:
                # Requests the client gave up on may still be running: start afresh.
                server.stop()
                server.start()
                entry["server_restarted_after"] = True
            print(
                f"[{backend} {size}] {scenario['name']:<17} "
                f"1 client: p50 {latency['p50_ms']} p99 {latency['p99_ms']} ms "
                f"({latency['requests']} req) | {args.concurrency} clients: "
                f"{load['rps']} req/s p50 {load['p50_ms']} p99 {load['p99_ms']} ms "
                f"({load['requests']} req, {load['errors']} errors)",
                flush=True,
            )

        previous = RESULTS / f"run-{backend}-{size}.json"
        if (
            args.reuse_export
            and previous.exists()
            and "export_csv" in json.loads(previous.read_text())
        ):
            # The full export takes minutes at 1M: keep the one measured before.
            old = json.loads(previous.read_text())
            for key in ("export_csv", "export_csv_no_timeout"):
                if key in old:
                    when = old[key].get("measured_at", old["started"])
                    result[key] = {**old[key], "measured_at": when}
            etag = result["export_csv"].get("etag")
            print(
                f"[{backend} {size}] CSV export: kept from {result['export_csv']['measured_at']}",
                flush=True,
            )
        elif not args.only or "export" in args.only:
            print(f"[{backend} {size}] CSV export", flush=True)
            export = measure_export(server, f"{API}/events?format=csv", args.export_timeout)
            result["export_csv"] = export
            print(
                f"[{backend} {size}]   {export.get('status')} complete={export['complete']} "
                f"{export['rows']:,} rows in {export['seconds']} s, worker RSS peak "
                f"{export['rss_peak_mb']} MB",
                flush=True,
            )
            if not export["complete"] and "WORKER TIMEOUT" in export.get("server_log", ""):
                # gunicorn's default 30 s worker timeout killed the stream: measure again
                # without it, to still know the time and memory a full export takes.
                server.stop()
                server = Server(url, args.port, log, ["--timeout", "0"])
                server.start()
                print(f"[{backend} {size}] CSV export again with --timeout 0", flush=True)
                again = measure_export(server, f"{API}/events?format=csv", args.export_timeout)
                again["server"] = " ".join(server.command())
                result["export_csv_no_timeout"] = again
                print(
                    f"[{backend} {size}]   {again.get('status')} complete={again['complete']} "
                    f"{again['rows']:,} rows in {again['seconds']} s, worker RSS peak "
                    f"{again['rss_peak_mb']} MB",
                    flush=True,
                )
                etag = again.get("etag")
            else:
                etag = export.get("etag")
        else:  # the export's own tag, from its headers alone (a GET would export it all)
            etag = get(args.port, f"{API}/events?format=csv", method="HEAD").headers.get("ETag")

        # Conditional GET of the export: a matching If-None-Match is a 304, records unread.
        server.stop()  # backends that end report their statistics
        pg_database = url.rsplit("/", 1)[1] if backend == "postgresql" else None
        reads_before = postgres_reads(pg_database) if pg_database else None
        server.start()
        conditional_path = f"{API}/events?format=csv"
        headers = {"If-None-Match": etag or '"none"'}
        try:
            get(args.port, conditional_path, headers)
        except (OSError, http.client.HTTPException):
            pass
        latency = run_phase(
            args.port,
            lambda _rng: conditional_path,
            304,
            headers,
            1,
            limits.latency_requests,
            limits.latency_seconds,
        )
        load = run_phase(
            args.port,
            lambda _rng: conditional_path,
            304,
            headers,
            args.concurrency,
            limits.load_requests,
            limits.load_seconds,
        )
        server.stop()
        entry = {
            "label": "conditional GET of the CSV export (`If-None-Match` → 304)",
            "path": conditional_path,
            "etag": etag,
            "extra": False,
            "latency": latency,
            "load": load,
        }
        if reads_before is not None:
            time.sleep(1)
            reads_after = postgres_reads(pg_database)
            entry["postgres_reads_during"] = {
                k: reads_after.get(k, 0) - reads_before.get(k, 0)
                for k in reads_after
                if reads_after.get(k, 0) != reads_before.get(k, 0)
            }
        result["scenarios"]["conditional_get"] = entry
        print(
            f"[{backend} {size}] conditional_get    1 client: p50 {latency['p50_ms']} p99 "
            f"{latency['p99_ms']} ms | {args.concurrency} clients: {load['rps']} req/s "
            f"({latency['errors'] + load['errors']} errors) reads: "
            f"{entry.get('postgres_reads_during')}",
            flush=True,
        )
    finally:
        server.stop()
    result["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    result["app_code_at_end"] = app_fingerprint()
    log_text = log.read_text(errors="replace") if log.exists() else ""
    result["server_trouble"] = trouble_counts(log_text)
    path = RESULTS / f"run-{backend}-{size}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"[{backend} {size}] wrote {path.relative_to(PROJECT_DIR)}", flush=True)
    return result


# Report ----------------------------------------------------------------------------------------


def machine() -> dict:
    meminfo = Path("/proc/meminfo").read_text()
    total_kb = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))
    cpu = re.search(r"model name\s+:\s+(.+)", Path("/proc/cpuinfo").read_text())
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu.group(1) if cpu else platform.processor(),
        "memory_gb": round(total_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def _ms(value) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _cell_latency(entry: dict | None) -> str:
    if not entry:
        return "–"
    lat = entry["latency"]
    errors = entry["latency"]["errors"] + entry["load"]["errors"]
    text = f"{_ms(lat['p50_ms'])} / {_ms(lat['p99_ms'])}"
    if lat["requests"] < 100:
        text += f" (n={lat['requests']})"
    return text + (f" ⚠ {errors} failed" if errors else "")


def _cell_load(entry: dict | None) -> str:
    if not entry:
        return "–"
    load = entry["load"]
    if load.get("skipped"):
        return "not run: " + load["skipped"]
    text = f"{load['rps']:g} ({_ms(load['p50_ms'])} / {_ms(load['p99_ms'])})"
    if load["requests"] < 400:
        text += f" n={load['requests']}"
    return text + (f" ⚠ {load['errors']} failed" if load["errors"] else "")


def _cell_cold(entry: dict | None) -> str:
    cold = (entry or {}).get("cold")
    return _ms(cold["ms"]) if cold and cold.get("ms") is not None else "–"


def _table(heading: str, by_size: dict[str, dict], rows: dict) -> list[str]:
    """A Markdown table: a row per label, a column per size with cell(that size's run)."""
    head = "| scenario | " + " | ".join(s.upper() if s == "1m" else s for s in by_size) + " |"
    body = [
        f"| {label} | " + " | ".join(cell(run) for run in by_size.values()) + " |"
        for label, cell in rows.items()
    ]
    return [f"### {heading}", "", head, "|---|" + "---:|" * len(by_size), *body, ""]


def _per_scenario(run: dict, cell) -> dict:
    """Rows for every scenario of `run`: its label, and cell() of that scenario's results."""
    return {
        scenario["label"]: lambda other, name=name: cell(other["scenarios"].get(name))
        for name, scenario in run["scenarios"].items()
    }


def report() -> str:
    runs = {}
    for path in sorted(RESULTS.glob("run-*.json")):
        run = json.loads(path.read_text())
        runs[run["backend"], run["size"]] = run
    lines = []
    for backend in BACKENDS:
        sizes = [s for s in SIZES if (backend, s) in runs]
        if not sizes:
            continue
        title = "SQLite" if backend == "sqlite" else "PostgreSQL"
        by_size = {size: runs[backend, size] for size in sizes}
        last = by_size[sizes[-1]]
        concurrency = last["concurrency"]
        for heading, cell in (
            ("latency, one client (p50 / p99 ms)", _cell_latency),
            (f"under load, {concurrency} clients: requests/s (p50 / p99 ms)", _cell_load),
            ("first request after the server starts (caches cold), ms", _cell_cold),
        ):
            lines += _table(f"{title}: {heading}", by_size, _per_scenario(last, cell))
        lines += _table(
            f"{title}: generation, cursor walk, export, server",
            by_size,
            {
                "records generated in (schema + rows + indexes)": lambda r: (
                    f"{r['generation']['seconds']['total']:.0f} s"
                ),
                "walking `next` links from page 1 (p50 per page)": lambda r: (
                    f"to page {r['cursor_walk']['page']}: {r['cursor_walk']['seconds']:.0f} s "
                    f"({_ms(r['cursor_walk']['p50_ms'])} ms)"
                ),
                "deep page ÷ page 1, p50 / p99 (one client)": _ratio,
                "CSV export of the events (`/events?format=csv`)": lambda r: _export(r, "summary"),
                "CSV export: worker RSS before → peak": lambda r: _export(r, "memory"),
                "worker RSS after start": lambda r: " / ".join(
                    f"{x:.0f} MB" for x in r["worker_rss_start_mb"]
                ),
                "conditional GET: rows read from PostgreSQL tables": _reads,
                "trouble in the gunicorn log": lambda r: (
                    ", ".join(f"{k} ×{n}" for k, n in r["server_trouble"].items()) or "none"
                ),
            },
        )
    return "\n".join(lines)


def _reads(run: dict) -> str:
    reads = run["scenarios"].get("conditional_get", {}).get("postgres_reads_during")
    if reads is None:
        return "n/a (SQLite)"
    rows = {k.removesuffix(".rows"): n for k, n in reads.items() if k.endswith(".rows")}
    return ", ".join(f"{table} {n}" for table, n in sorted(rows.items())) or "none"


def _ratio(run: dict) -> str:
    first = run["scenarios"].get("list_first", {}).get("latency")
    deep = run["scenarios"].get("cursor_page_1000", {}).get("latency")
    if not first or not deep or not first["p50_ms"]:
        return "–"
    return f"{deep['p50_ms'] / first['p50_ms']:.2f} / {deep['p99_ms'] / first['p99_ms']:.2f}"


def _export(run: dict, what: str) -> str:
    export = run.get("export_csv")
    if not export:
        return "–"
    again = run.get("export_csv_no_timeout")
    when = f" (measured {export['measured_at']})" if export.get("measured_at") else ""
    if what == "summary":
        text = (
            f"{export['rows']:,} rows in {export['seconds']:.0f} s "
            f"({export['bytes'] / 1e6:.0f} MB, {export['rows_per_s']:,} rows/s){when}"
        )
        if not export["complete"]:
            text = f"**cut off** after {export['rows']:,} rows, {export['seconds']:.0f} s"
            if again:
                text += (
                    f"; with `--timeout 0`: {again['rows']:,} rows in {again['seconds']:.0f} s "
                    f"({again['bytes'] / 1e6:.0f} MB, {again['rows_per_s']:,} rows/s)"
                )
        return text

    def memory(e):
        before = max(w["rss_before_mb"] for w in e["workers"].values())
        return f"{before:.0f} → {e['rss_peak_mb']:.0f} MB"

    text = memory(export)
    if again:
        text += f"; with `--timeout 0`: {memory(again)}"
    return text


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated: 10k,100k,1m")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="sqlite,postgresql")
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--concurrency", type=int, default=4, help="client threads under load")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--regenerate", action="store_true", help="rebuild cached databases")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiplies every request and time bound"
    )
    parser.add_argument("--export-timeout", type=float, default=1800, help="client timeout, s")
    parser.add_argument("--only", default="", help="comma-separated scenario names (debugging)")
    parser.add_argument(
        "--reuse-export",
        action="store_true",
        help="keep the CSV export measured by the previous run of that backend and size",
    )
    parser.add_argument(
        "--reuse-database",
        action="store_true",
        help="use the generated database, even if made by older code or written to since: "
        "migrated to the current schema (`flask db upgrade`) instead of made again",
    )
    parser.add_argument("--report", action="store_true", help="only print the tables")
    args = parser.parse_args(argv)
    args.only = [x for x in args.only.split(",") if x]
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.report:
        if not port_is_free(args.port):
            sys.exit(f"Port {args.port} is in use: pass --port.")
        for backend in args.backends.split(","):
            for size in args.sizes.split(","):
                if backend not in BACKENDS or size not in SIZES:
                    sys.exit(f"Unknown backend or size: {backend} {size}")
                one_run(backend, size, args)
    text = report()
    info = machine()
    header = (
        f"Machine: {info['cpus']} CPUs ({info['cpu_model']}), {info['memory_gb']} GB RAM, "
        f"Python {info['python']}, Linux {info['kernel']}.\n\n"
    )
    (RESULTS / "report.md").write_text(header + text + "\n")
    print(header + text)


if __name__ == "__main__":
    main()
