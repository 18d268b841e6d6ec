"""Datasette as a peer: the same SQLite file, the same run, ratios next to absolute numbers.

    .venv/bin/python bench/peers.py
    .venv/bin/python bench/peers.py --size 100k --duration 20

Serves the benchmark SQLite database (generated as bench/run.py does) with ours (gunicorn, the
shipped gunicorn.conf.py, 2 workers) and with Datasette (one process, `-i` immutable, from its
own virtual environment in bench/results/datasette-venv, never a project dependency), then:
(a) a 50-record page of events, requests per second and per server CPU-second (wrk);
(b) the full CSV export of events, rows per second and the server's peak RSS;
(c) our 304 for a matching If-None-Match against a bare WSGI app (`bare_app` below) that
answers a fixed 304 under the same gunicorn settings.
Each measure is taken --rounds times (default 3), ours and the peer's in turn, and reported as
the median: one 10-second wrk run of each varied by a tenth on a 2-core machine.
Prints a Markdown table and writes bench/results/peers-<size>-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import http.client
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")
ETAG = '"bare"'


def bare_app(environ, start_response):
    """The least a WSGI app can do for a conditional GET: a fixed 304."""
    start_response("304 Not Modified", [("ETag", ETAG), ("Cache-Control", "no-cache")])
    return [b""]


def interpreter() -> str:
    """A Python 3.12+ that runs (a pyenv shim may be on PATH for a version not installed)."""
    for name in ("python3.13", "python3.12"):
        found = shutil.which(name)
        if found and subprocess.run([found, "-c", ""], capture_output=True).returncode == 0:
            return found
    return sys.executable


def datasette_bin(venv: Path) -> Path:
    exe = venv / "bin" / "datasette"
    if not exe.exists():
        subprocess.run([interpreter(), "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "--quiet", "datasette"]
        subprocess.run(pip, check=True)
    return exe


# Processes -----------------------------------------------------------------------------------


def tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        found.append(current := todo.pop())
        todo += parents.get(current, [])
    return found


def cpu_seconds(pid: int) -> float:
    total = 0
    for each in tree(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def rss_mb(pid: int) -> float:
    """The largest resident set of one process in the tree (a worker, or Datasette itself)."""
    best = 0
    for each in tree(pid):
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        if match := re.search(r"VmRSS:\s+(\d+)", status):
            best = max(best, int(match[1]))
    return best / 1024


class Server:
    def __init__(self, name: str, port: int, argv: list[str], ready: str, **kwargs):
        self.name, self.port, self.ready = name, port, ready
        self.log = open(BENCH_DIR / "results" / f"peers-{name}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            argv, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
        )

    def wait(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: see {self.log.name}")
            try:
                if get(self.port, self.ready)[0] in (200, 304):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# Clients -------------------------------------------------------------------------------------


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def load(server: Server, path: str, args, headers: dict | None = None) -> dict:
    """wrk against one URL: requests, req/s, server CPU-seconds and requests per CPU-second."""
    argv = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    before = cpu_seconds(server.proc.pid)
    out = subprocess.run(
        [*argv, f"http://127.0.0.1:{server.port}{path}"], capture_output=True, text=True, check=True
    ).stdout
    cpu = cpu_seconds(server.proc.pid) - before
    requests = int(re.search(r"(\d+) requests in", out)[1])
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "path": path,
        "requests": requests,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
        "cpu_s": round(cpu, 2),
        "req_per_cpu_s": round(requests / cpu, 1) if cpu else None,
        "bad_status": int(errors[1]) if errors else 0,
        "socket_errors": socket_errors[1] if socket_errors else None,
    }


def export(server: Server, path: str) -> dict:
    """Stream one CSV export: data rows received, wall time, the server's peak RSS meanwhile."""
    peak, done = [rss_mb(server.proc.pid)], threading.Event()

    def sample():
        while not done.wait(0.05):
            peak.append(rss_mb(server.proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    before = cpu_seconds(server.proc.pid)
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        rows = sum(1 for _ in csv.reader(io.TextIOWrapper(response, "utf-8", newline=""))) - 1
        status = response.status
    finally:
        conn.close()
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
    return {
        "path": path,
        "status": status,
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds, 1),
        "cpu_s": round(cpu_seconds(server.proc.pid) - before, 2),
        "peak_rss_mb": round(max(peak), 1),
    }


def side_by_side(rounds: int, **measures) -> dict:
    """Each measure taken `rounds` times, in turn (ours, the peer's, ours, ...), so that the
    machine's drift during the run falls on both sides; each number is its median over the
    rounds, and every round is kept under "rounds"."""
    taken: dict[str, list[dict]] = {name: [] for name in measures}
    for _ in range(rounds):
        for name, measure in measures.items():
            taken[name].append(measure())
    return {name: median_of(results) for name, results in taken.items()}


def median_of(results: list[dict]) -> dict:
    numbers = {
        key: statistics.median(r[key] for r in results)
        for key, value in results[0].items()
        if isinstance(value, int | float) and all(r[key] is not None for r in results)
    }
    return {**results[0], **numbers, "rounds": results}


# Run -----------------------------------------------------------------------------------------


def ratio(ours, theirs):
    return f"{ours / theirs:.2f}" if ours and theirs else "n/a"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("10k", "100k", "1m"), default="10k")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each measure (median)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--port", type=int, default=8821, help="ours; +1 Datasette, +2 bare")
    parser.add_argument("--venv", type=Path, default=BENCH_DIR / "results" / "datasette-venv")
    parser.add_argument(
        "--database-url",
        help="a SQLite database bench/generate.py made, used as it is (default: the size's, "
        "regenerated when the code that decides its rows has changed)",
    )
    args = parser.parse_args(argv)

    sys.path.insert(0, str(BENCH_DIR))
    import run  # imported here: gunicorn loads this module for bare_app

    url = args.database_url
    if url is None:
        run.ensure_database("sqlite", args.size, 1, regenerate=False)
        url = run.database_for("sqlite", args.size)
    db_file = Path(url.removeprefix("sqlite:///"))
    db = db_file.stem
    datasette = datasette_bin(args.venv)
    version = subprocess.run([datasette, "--version"], capture_output=True, text=True).stdout
    gunicorn = str(run.PROJECT_DIR / ".venv" / "bin" / "gunicorn")
    config = str(run.PROJECT_DIR / "gunicorn.conf.py")
    env = {**os.environ, "DATABASE_URL": url, "WEB_CONCURRENCY": "2"}
    page = f"{run.API}/events?page_size=50"
    # Datasette shows the table's columns, less the two that hold our stored forms (it would
    # otherwise send each record three times over).
    not_ours = "_nocol=json_form&_nocol=csv_form"
    their_page = f"/{db}/facts.json?type=event&_size=50&_shape=array&{not_ours}"

    servers = []
    try:
        ours = Server(
            "ours",
            args.port,
            [gunicorn, "-c", config, "api:create_app()"],
            page,
            cwd=run.PROJECT_DIR,
            env={**env, "PORT": str(args.port)},
        )
        servers.append(ours)
        theirs = Server(
            "datasette",
            args.port + 1,
            [
                str(datasette),
                "serve",
                "-i",
                str(db_file),
                "--port",
                str(args.port + 1),
                "--setting",
                "max_returned_rows",
                "1000",
                "--setting",
                "sql_time_limit_ms",
                "60000",
                "--setting",
                "allow_csv_stream",
                "on",
                "--setting",
                "max_csv_mb",
                "0",
            ],  # fmt: skip
            their_page,
        )
        servers.append(theirs)
        bare = Server(
            "bare",
            args.port + 2,
            [gunicorn, "-c", config, "--chdir", str(BENCH_DIR), "peers:bare_app"],
            "/",
            cwd=run.PROJECT_DIR,
            env={**env, "PORT": str(args.port + 2)},
        )
        servers.append(bare)
        for server in servers:
            server.wait()

        status, headers, body = get(ours.port, page)
        etag = headers["ETag"]
        assert get(ours.port, page, {"If-None-Match": etag})[0] == 304
        assert len(json.loads(get(theirs.port, their_page)[2])) == 50

        results = {
            "size": args.size,
            "database": str(db_file),
            "datasette": version.strip(),
            "wrk": {k: getattr(args, k) for k in ("duration", "threads", "connections")},
            "rounds": args.rounds,
            "page": side_by_side(
                args.rounds,
                ours=lambda: load(ours, page, args),
                datasette=lambda: load(theirs, their_page, args),
            ),
            "csv": side_by_side(
                args.rounds,
                ours=lambda: export(ours, f"{run.API}/events?format=csv"),
                datasette=lambda: export(
                    theirs, f"/{db}/facts.csv?type=event&_stream=on&_size=max&{not_ours}"
                ),
            ),
            "not_modified": side_by_side(
                args.rounds,
                ours=lambda: load(ours, page, args, {"If-None-Match": etag}),
                bare=lambda: load(bare, "/", args, {"If-None-Match": ETAG}),
            ),
        }
    finally:
        for server in servers:
            server.stop()

    p, c, n = results["page"], results["csv"], results["not_modified"]
    rows = [
        ("50-record page, req/s", p["ours"]["rps"], p["datasette"]["rps"]),
        ("50-record page, req/CPU-s", p["ours"]["req_per_cpu_s"], p["datasette"]["req_per_cpu_s"]),
        ("CSV export, rows/s", c["ours"]["rows_per_s"], c["datasette"]["rows_per_s"]),
        ("CSV export, rows", c["ours"]["rows"], c["datasette"]["rows"]),
        ("CSV export, peak RSS MB", c["ours"]["peak_rss_mb"], c["datasette"]["peak_rss_mb"]),
        ("304, req/s (vs bare WSGI)", n["ours"]["rps"], n["bare"]["rps"]),
        ("304, req/CPU-s (vs bare WSGI)", n["ours"]["req_per_cpu_s"], n["bare"]["req_per_cpu_s"]),
    ]
    print(f"\n{args.size} records, {results['datasette']}, wrk -t{args.threads} "
          f"-c{args.connections} -d{args.duration}s, median of {args.rounds} rounds\n")  # fmt: skip
    print("| measure | ours | peer | ours ÷ peer |\n| --- | ---: | ---: | ---: |")
    for label, mine, peer in rows:
        print(f"| {label} | {mine:,} | {peer:,} | {ratio(mine, peer)} |")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = BENCH_DIR / "results" / f"peers-{args.size}-{stamp}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nraw: {out.relative_to(run.PROJECT_DIR)}")


if __name__ == "__main__":
    main()
