"""Which HTTP server: gunicorn (sync, gthread, gevent), granian, nginx in front, side by side.

    .venv/bin/python bench/servers.py                     # everything, 10k records
    .venv/bin/python bench/servers.py --size 100k --only gevent,granian --parts servers
    .venv/bin/python bench/servers.py --parts stress,export

Each configuration runs 2 worker processes (the machine has 2 cores) on the SQLite benchmark
database of bench/run.py (built or reused as it does), on a free port of 127.0.0.1, the only
host this script talks to. For each one it measures:

- load: a fixed number of `GET /api/v1/events?page_size=50` and of `GET /healthz` from CONCURRENCY
  keep-alive connections (wrk if installed, else a Python client, which competes for the CPU):
  requests/s, p50/p99 latency and requests per CPU-second of the server (utime + stime of its
  whole process tree, from /proc, before and after);
- slow clients: 50 connections that sent half a request and 50 that sent nothing are held open
  while 20 sequential `GET /healthz`, each on a new connection, are timed (5 s client timeout);
- busy workers (beyond the issue's test): the same probes while two CSV exports stream.

Rounds interleave the configurations; the table shows each figure's median over the rounds. A
bare WSGI app (bare_app below) served like the configuration named by --bare-like is the
per-request reference. Then bench/stress.py runs with several hash seeds (worker crashes), and
one worker of the shipped gunicorn.conf.py (or of granian: --export-server) streams the NDJSON
and CSV exports while its memory is sampled. Results: bench/results/servers-<size>-<date>-<time>
.json and .md (the table); the servers' logs in bench/results/logs/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import run

HOST = run.HOST
GUNICORN = str(run.VENV_BIN / "gunicorn")
GRANIAN = str(run.VENV_BIN / "granian")
SHIPPED_CONFIG = run.PROJECT_DIR / "gunicorn.conf.py"
LIST_PATH = f"{run.API}/events?page_size=50"
HEALTH_PATH = "/healthz"
EXPORT_PATH = f"{run.API}/events?format=csv"
APP = "api:create_app"  # an app factory
BARE = "servers:bare_app"  # the reference, below
WORKERS = 2
THREADS = 4  # gthread threads and granian blocking threads per worker
CLK_TCK = os.sysconf("SC_CLK_TCK")
TROUBLE = re.compile(
    r"Traceback|WORKER TIMEOUT|was sent SIG(?!TERM)\w+|Fatal Python error"
    r"|\[(?:ERROR|CRITICAL|error|crit|alert|emerg)\]"
)

BARE_BODY = b'{"status": "ok"}'


def bare_app(environ, start_response):
    """The reference: a WSGI app that does nothing but answer."""
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BARE_BODY)))]
    )
    return [BARE_BODY]


# Server configurations ---------------------------------------------------------------------


@dataclass
class Process:
    argv: list[str]
    env: dict[str, str]


# (public port, temporary directory, APP or BARE) -> the processes to start, in order
Build = Callable[[int, Path, str], list[Process]]


@dataclass
class Config:
    name: str
    label: str
    build: Build


def gunicorn_flags(port: int, worker_class: str, timeout: int = 30) -> list[str]:
    """The shipped settings other than the worker class, for configs that skip the file."""
    return [
        *("-c", "/dev/null"),  # never ./gunicorn.conf.py (gunicorn reads it from the cwd)
        *("--bind", f"{HOST}:{port}", "--workers", str(WORKERS), "--worker-class", worker_class),
        *("--timeout", str(timeout), "--keep-alive", "5", "--limit-request-line", "8190"),
        *("--access-logfile", "-", "--no-control-socket"),
    ]


def gunicorn_target(target: str) -> str:
    return f"{target}()" if target == APP else target


def sync(port: int, tmp: Path, target: str) -> list[Process]:
    """A sync worker's timeout limits each request: 600 s, as the project's sync config had."""
    flags = gunicorn_flags(port, "sync", timeout=600)
    return [Process([GUNICORN, *flags, gunicorn_target(target)], {})]


def gthread(port: int, tmp: Path, target: str) -> list[Process]:
    flags = [*gunicorn_flags(port, "gthread"), "--threads", str(THREADS)]
    return [Process([GUNICORN, *flags, gunicorn_target(target)], {})]


def shipped(workers: int = WORKERS, extra: tuple[str, ...] = ()) -> Build:
    """The shipped gunicorn.conf.py exactly, as `make run` and the Docker image start it."""

    def build(port: int, tmp: Path, target: str) -> list[Process]:
        env = {"HOST": HOST, "PORT": str(port), "WEB_CONCURRENCY": str(workers)}
        argv = [GUNICORN, "-c", str(SHIPPED_CONFIG), *extra, gunicorn_target(target)]
        return [Process(argv, env)]

    return build


def granian(workers: int = WORKERS) -> Build:
    def build(port: int, tmp: Path, target: str) -> list[Process]:
        argv = [GRANIAN, "--interface", "wsgi", "--host", HOST, "--port", str(port)]
        argv += ["--workers", str(workers), "--blocking-threads", str(THREADS), "--access-log"]
        argv += ["--working-dir", str(run.PROJECT_DIR)]
        argv += ["--factory"] if target == APP else []
        return [Process([*argv, target], {})]

    return build


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_timeout 5s;
    client_header_timeout 30s;
    upstream app {{ server {host}:{upstream}; }}
    server {{
        listen {host}:{port};
        location / {{
            proxy_pass http://app;
            proxy_buffering on;
            proxy_request_buffering on;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


def nginx_sync(port: int, tmp: Path, target: str) -> list[Process]:
    """nginx buffers whole requests and responses, so gunicorn's sync workers never wait."""
    upstream = free_port()
    tmp.chmod(0o755)  # nginx's workers run as nobody and keep their buffers here
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, host=HOST, port=port, upstream=upstream))
    nginx = [shutil.which("nginx"), "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")]
    return [*sync(upstream, tmp, target), Process(nginx, {})]


CONFIGS = [
    Config("sync", f"gunicorn sync, {WORKERS} workers", sync),
    Config("gthread", f"gunicorn gthread, {WORKERS} workers × {THREADS} threads", gthread),
    Config("gevent", f"gunicorn gevent, {WORKERS} workers (shipped gunicorn.conf.py)", shipped()),
    Config("granian", f"granian WSGI, {WORKERS} workers × {THREADS} blocking threads", granian()),
    Config("nginx", f"nginx (buffering) → gunicorn sync, {WORKERS} workers", nginx_sync),
]
BY_NAME = {config.name: config for config in CONFIGS}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


# Processes and their CPU time --------------------------------------------------------------


def process_tree(roots: list[int]) -> list[int]:
    """The roots and all their descendants (from /proc/<pid>/task/<tid>/children)."""
    seen, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.append(pid)
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            pass
    return seen


def cpu_seconds(roots: list[int]) -> float:
    """utime + stime of a process tree, plus that of its children already reaped."""
    ticks = 0
    for pid in process_tree(roots):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # fields[0] is field 3 of proc(5), the state
        ticks += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / CLK_TCK


class Service:
    """The processes of one configuration, started in their own sessions, logging to a file."""

    def __init__(self, config: Config, database_url: str, log: Path, target: str):
        self.config, self.database_url, self.log, self.target = config, database_url, log, target
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix=f"servers-{config.name}-"))
        self.processes: list[subprocess.Popen] = []

    def start(self) -> None:
        base = {
            k: v
            for k, v in os.environ.items()
            if k not in ("FLASK_DEBUG", "GUNICORN_CMD_ARGS", "WEB_CONCURRENCY", "PORT", "HOST")
        }
        base["DATABASE_URL"] = self.database_url
        if self.target == BARE:
            base["PYTHONPATH"] = str(run.BENCH_DIR)  # the bare app lives in this file
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            for process in self.config.build(self.port, self.tmp, self.target):
                out.write(
                    f"\n=== {dt.datetime.now().isoformat()} {' '.join(process.argv)}\n".encode()
                )
                out.flush()
                self.processes.append(
                    subprocess.Popen(
                        process.argv,
                        cwd=run.PROJECT_DIR,
                        env={**base, **process.env},
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"{self.config.name} exited at start; see {self.log}")
            try:
                if run.get(self.port, HEALTH_PATH, timeout=5).status == 200:
                    break
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{self.config.name} did not answer {HEALTH_PATH}; see {self.log}")
        self.wait_idle()

    def wait_idle(self, window: float = 0.5, limit: float = 30) -> None:
        """Until the tree uses no CPU for a while: every worker has booted (they import lazily)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            before = cpu_seconds(self.pids())
            time.sleep(window)
            if cpu_seconds(self.pids()) - before <= 0.02:
                return

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def workers(self) -> list[int]:
        """The processes that run the app (what run.measure_export samples)."""
        root = self.processes[0].pid
        return [pid for pid in process_tree([root]) if pid != root]

    def log_position(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def log_since(self, position: int) -> str:
        with self.log.open("rb") as log:
            log.seek(position)
            return log.read().decode(errors="replace")

    def nginx_error_log(self) -> str:
        path = self.tmp / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for process in reversed(self.processes):  # the proxy first, then its upstream
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)  # the session we started for it
                    process.wait()
        self.processes = []
        shutil.rmtree(self.tmp, ignore_errors=True)


# Load -------------------------------------------------------------------------------------------

# wrk runs for a duration, not a request count: the script stops its thread after `limit`
# responses and writes a file; this script then reads the server's CPU and interrupts wrk,
# which prints the summary from done().
WRK_SCRIPT = """\
local limit = tonumber(os.getenv("WRK_REQUESTS"))
local done_file = os.getenv("WRK_DONE_FILE")
local count = 0
function response(status, headers, body)
  count = count + 1
  if count == limit then
    local f = io.open(done_file, "w")
    f:write("done")
    f:close()
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\\n',
    summary.requests, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def connections_by_process(port: int) -> dict:
    """Established connections to `port`, counted per server process (from `ss`).

    Keep-alive connections stay with the worker that accepted them, so this shows how evenly
    the workers share the load; those no process owns yet wait in the listen backlog.
    """
    try:
        listing = subprocess.run(
            ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    counts: dict[str, int] = {}
    waiting = 0
    for line in listing.splitlines():
        if pid := re.search(r"pid=(\d+)", line):
            counts[pid.group(1)] = counts.get(pid.group(1), 0) + 1
        else:
            waiting += 1
    return {"by_process": sorted(counts.values(), reverse=True), "not_accepted": waiting}


class Spread:
    """connections_by_process, sampled once a second into the load (in a thread)."""

    def __init__(self, port: int):
        self.counts: dict = {}
        self.timer = threading.Timer(1.0, lambda: self.counts.update(connections_by_process(port)))
        self.timer.start()

    def done(self) -> dict:
        self.timer.cancel()
        self.timer.join()
        return self.counts


def own_cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def machine_cpu() -> float:
    """CPU time used by every process on the machine so far (/proc/stat: all but idle)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK  # less idle and iowait


def others_cores(machine: float, server: float, client: float, seconds: float) -> float:
    """How many cores the rest of the machine kept busy meanwhile (other users' work)."""
    return round(max(0.0, machine - server - client) / seconds, 2)


def wrk_load(service: Service, path: str, requests: int, concurrency: int, bound: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        script, done_file = Path(tmp) / "count.lua", Path(tmp) / "done"
        script.write_text(WRK_SCRIPT)
        env = {**os.environ, "WRK_REQUESTS": str(requests), "WRK_DONE_FILE": str(done_file)}
        argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{bound:.0f}s", "--timeout", "5s"]
        argv += ["-s", str(script), f"http://{HOST}:{service.port}{path}"]
        client_before, machine_before = own_cpu(resource.RUSAGE_CHILDREN), machine_cpu()
        server_before = cpu_seconds(service.pids())
        started = time.perf_counter()
        wrk = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
        spread = Spread(service.port)
        while wrk.poll() is None and not done_file.exists():
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
        server_cpu = cpu_seconds(service.pids()) - server_before
        machine = machine_cpu() - machine_before
        if wrk.poll() is None:
            wrk.send_signal(signal.SIGINT)  # wrk's own way to stop and report
        output, _ = wrk.communicate(timeout=30)
    match = re.search(r"^WRK_JSON (.+)$", output, re.M)
    if not match:
        raise RuntimeError(f"no summary from wrk: {output[-2000:]}")
    summary = json.loads(match.group(1))
    connections = spread.done()
    client_cpu = own_cpu(resource.RUSAGE_CHILDREN) - client_before  # wrk, reaped by now
    errors = sum(summary[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {
        "client": "wrk",
        "requests": summary["requests"],
        "errors": errors,
        "error_kinds": {k: summary[k] for k in ("connect", "read", "write", "status", "timeout")},
        "seconds": round(elapsed, 3),
        "rps": round(summary["requests"] / elapsed, 1),
        "p50_ms": round(summary["p50_us"] / 1000, 2),
        "p99_ms": round(summary["p99_us"] / 1000, 2),
        "max_ms": round(summary["max_us"] / 1000, 2),
        "server_cpu_s": round(server_cpu, 2),
        "req_per_cpu_s": round(summary["requests"] / server_cpu, 1) if server_cpu else None,
        "client_cpu_s": round(client_cpu, 2),
        "others_cores": others_cores(machine, server_cpu, client_cpu, elapsed),
        "connections_by_process": connections,
    }


def python_load(service: Service, path: str, requests: int, concurrency: int, bound: float) -> dict:
    """The fallback client: keep-alive http.client connections in threads (they share the CPU)."""
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    issued = 0
    deadline = time.perf_counter() + bound

    def client() -> None:
        nonlocal issued
        connection = None
        while True:
            with lock:
                if issued >= requests or time.perf_counter() >= deadline:
                    break
                issued += 1
            started = time.perf_counter()
            try:
                connection = connection or http.client.HTTPConnection(HOST, service.port, timeout=5)
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                seconds = time.perf_counter() - started
                if response.will_close:
                    connection.close()
                    connection = None
            except (OSError, http.client.HTTPException) as error:
                with lock:
                    errors.append(repr(error))
                if connection:
                    connection.close()
                connection = None
                continue
            with lock:
                if response.status == 200:
                    latencies.append(seconds)
                else:
                    errors.append(f"HTTP {response.status}")
        if connection:
            connection.close()

    client_before, machine_before = own_cpu(resource.RUSAGE_SELF), machine_cpu()
    server_before = cpu_seconds(service.pids())
    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    spread = Spread(service.port)
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    connections = spread.done()
    server_cpu = cpu_seconds(service.pids()) - server_before
    machine = machine_cpu() - machine_before
    client_cpu = own_cpu(resource.RUSAGE_SELF) - client_before
    stats = run.summarise(latencies, elapsed, errors)
    del stats["samples_ms"]
    return {
        "client": "python",
        **stats,
        "server_cpu_s": round(server_cpu, 2),
        "req_per_cpu_s": round(len(latencies) / server_cpu, 1) if server_cpu else None,
        "client_cpu_s": round(client_cpu, 2),
        "others_cores": others_cores(machine, server_cpu, client_cpu, elapsed),
        "connections_by_process": connections,
    }


# Slow clients and busy workers ------------------------------------------------------------------


def probe_health(port: int, timeout: float) -> dict:
    """One `GET /healthz` on a new connection: its latency, or why it failed."""
    started = time.perf_counter()
    try:
        response = run.get(port, HEALTH_PATH, timeout=timeout)
        outcome = "ok" if response.status == 200 else f"HTTP {response.status}"
    except (OSError, http.client.HTTPException) as error:
        outcome = repr(error)
    return {"ms": round((time.perf_counter() - started) * 1000, 1), "outcome": outcome}


def probes_summary(probes: list[dict], wanted: int) -> dict:
    failed = [p for p in probes if p["outcome"] != "ok"]
    slow = [p for p in probes if p["outcome"] == "ok" and p["ms"] > 1000]
    return {
        "probes": len(probes),
        "not_sent": wanted - len(probes),
        "failed": len(failed),
        "over_1s": len(slow),
        "max_ms": max((p["ms"] for p in probes), default=None),
        "p50_ms": statistics.median(p["ms"] for p in probes) if probes else None,
        "blocked": bool(failed or slow or wanted > len(probes)),
        "samples": probes,
    }


def slow_clients(
    port: int, partial: int, idle: int, probes: int, timeout: float, limit: float
) -> dict:
    """Hold half-sent and silent connections open; time /healthz on fresh connections."""
    results: list[dict] = []
    deadline = time.monotonic() + limit
    with run.held_connections(port, partial, idle) as answered_or_closed:
        time.sleep(1)  # let the server accept them and start reading
        while len(results) < probes and time.monotonic() + timeout < deadline:
            results.append(probe_health(port, timeout))
        closed = answered_or_closed()
    return {
        "partial": partial,
        "idle": idle,
        "held_closed_by_server": closed,
        **probes_summary(results, probes),
    }


def busy_workers(port: int, exports: int, probes: int, timeout: float) -> dict:
    """Probe /healthz while `exports` CSV exports stream to clients that read them at once."""
    stop = threading.Event()
    downloads: list[dict] = []

    def download() -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=60)
        started, size = time.perf_counter(), 0
        try:
            connection.request("GET", EXPORT_PATH)
            response = connection.getresponse()
            while not stop.is_set() and (chunk := response.read(1 << 16)):
                size += len(chunk)
            outcome = {"status": response.status, "finished": not stop.is_set()}
        except (OSError, http.client.HTTPException) as error:
            outcome = {"error": repr(error)}
        finally:
            connection.close()  # unread, the rest of a stream is cut off
        downloads.append(
            {**outcome, "bytes": size, "seconds": round(time.perf_counter() - started, 1)}
        )

    threads = [threading.Thread(target=download) for _ in range(exports)]
    for thread in threads:
        thread.start()
    time.sleep(1)  # the exports have started
    results: list[dict] = []
    deadline = time.monotonic() + 30
    while len(results) < probes and any(t.is_alive() for t in threads):
        if time.monotonic() + timeout > deadline:
            break
        results.append(probe_health(port, timeout))
        time.sleep(0.25)
    stop.set()
    for thread in threads:
        thread.join()
    return {"exports": downloads, **probes_summary(results, len(results))}


# One configuration ------------------------------------------------------------------------------


def trouble(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for match in TROUBLE.finditer(text):
        counts[match.group(0)] = counts.get(match.group(0), 0) + 1
    return counts


def measure(config: Config, target: str, args, extras: bool) -> dict:
    """Start one configuration, measure it, stop it; trouble in its log counted per phase."""
    name = config.name if target == APP else f"bare-{config.name}"
    service = Service(config, args.database_url, run.LOG_DIR / f"servers-{name}.log", target)
    load = wrk_load if args.client == "wrk" else python_load
    result: dict = {"config": config.name, "target": target, "server_trouble": {}}
    mark = service.log_position()

    def phase_done(phase: str) -> None:
        nonlocal mark
        log = service.log_since(mark)
        mark += len(log.encode())
        if found := trouble(log):
            result["server_trouble"][phase] = found
            result.setdefault("server_log", {})[phase] = log[-3000:]

    service.start()
    try:
        result["command"] = [" ".join(p.args) for p in service.processes]
        result["processes"] = len(process_tree(service.pids()))
        paths = {"list": LIST_PATH} if target == APP else {}
        for key, path in {**paths, "healthz": HEALTH_PATH}.items():
            load(service, path, args.warmup, args.concurrency, 60)
            service.wait_idle()
            requests = args.list_requests if key == "list" else args.health_requests
            result[key] = load(service, path, requests, args.concurrency, args.bound)
            print(f"  {name:<12} {key:<8} {brief(result[key])}", flush=True)
        phase_done("load")
        if extras and target == APP:
            result["busy"] = busy_workers(service.port, WORKERS, 20, args.probe_timeout)
            print(f"  {name:<12} busy     {brief_probes(result['busy'])}", flush=True)
            phase_done("busy")
        if extras:
            result["slow"] = slow_clients(
                service.port, 50, 50, 20, args.probe_timeout, args.slow_limit
            )
            print(f"  {name:<12} slow     {brief_probes(result['slow'])}", flush=True)
            phase_done("slow")
    finally:
        if errors := trouble(nginx_log := service.nginx_error_log()):
            result["server_trouble"]["nginx error log"] = errors
            result.setdefault("server_log", {})["nginx error log"] = nginx_log[-3000:]
        service.stop()
    if result["server_trouble"]:
        print(f"  {name:<12} trouble in the server log: {result['server_trouble']}", flush=True)
    return result


def brief(load: dict) -> str:
    return (
        f"{load['requests']} req in {load['seconds']} s: {load['rps']} req/s, "
        f"{load['req_per_cpu_s']} req/CPU-s, p50 {load['p50_ms']} p99 {load['p99_ms']} ms, "
        f"{load['errors']} errors; connections per process {load['connections_by_process']}; "
        f"others kept {load['others_cores']} cores busy"
    )


def brief_probes(result: dict) -> str:
    return (
        f"{result['probes']} probes, max {result['max_ms']} ms, {result['over_1s']} over 1 s, "
        f"{result['failed']} failed, {result['not_sent']} not sent: "
        f"{'BLOCKED' if result['blocked'] else 'served'}"
    )


# Stress and export memory ------------------------------------------------------------------------


STRESS_LINE = re.compile(r"(\d+) worker crashes.*?(\d+) other worker deaths.*?(\d+) failed")


def stress(seeds: list[str]) -> list[dict]:
    results = []
    for seed in seeds:
        argv = [sys.executable, str(run.BENCH_DIR / "stress.py"), "--hash-seed", seed]
        argv += ["--port", str(free_port())]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        line = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
        keys = ("crashes", "other_deaths", "failed")
        counts = STRESS_LINE.search(line)
        numbers = dict(zip(keys, map(int, counts.groups()), strict=True)) if counts else {}
        results.append({"seed": seed, **dict.fromkeys(keys), **numbers, "line": line})
        print(f"  stress: {line}", flush=True)
    return results


def one_export(url: str, size: str, fmt: str, config: Config, timeout: float) -> dict:
    """run.measure_export on a one-worker server, with the worker's RSS every second."""
    service = Service(config, url, run.LOG_DIR / f"servers-export-{size}.log", APP)
    service.start()
    worker, started = service.workers()[0], time.perf_counter()
    timeline: list[tuple[int, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1):
            rss = run.memory_kb(worker).get("VmRSS", 0) / 1024
            timeline.append((round(time.perf_counter() - started), round(rss, 1)))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        export = run.measure_export(service, f"{run.API}/events?format={fmt}", timeout)
    finally:
        stop.set()
        sampler.join()
        service.stop()
    if fmt == "ndjson":  # measure_export counts CSV rows: lines less the header
        export["rows"] = export["rows"] + 1 if export["bytes"] else 0
        export["rows_per_s"] = round(export["rows"] / export["seconds"])
    export["command"] = " ".join(config.build(0, Path(), APP)[0].argv)
    export["rss_every_second_mb"] = timeline
    return export


def export_memory(size: str, timeout: float, server: str) -> dict:
    """Each export from one worker; with gunicorn again without its timeout if that cut it."""
    run.ensure_database("sqlite", size, 1, regenerate=False)
    url = run.database_for("sqlite", size)
    results: dict = {"size": size, "records": run.SIZES[size], "server": server}
    for fmt in ("ndjson", "csv"):
        for extra in ((), ("--timeout", "0")):
            if server == "granian":
                config = Config("export", "granian, 1 worker", granian(1))
            else:
                config = Config("export", "shipped gunicorn.conf.py, 1 worker", shipped(1, extra))
            export = one_export(url, size, fmt, config, timeout)
            results[fmt + ("_no_timeout" if extra else "")] = export
            print(
                f"  export {server} {fmt} {size} {' '.join(extra)}: complete={export['complete']} "
                f"{export['rows']:,} rows in {export['seconds']} s ({export['rows_per_s']:,} "
                f"rows/s), worker RSS peak {export['rss_peak_mb']} MB, "
                f"trouble {export.get('server_trouble', {})}",
                flush=True,
            )
            if export["complete"] or server == "granian":
                break
    return results


# Report -----------------------------------------------------------------------------------------


def median(runs: list[dict], part: str, key: str):
    values = [r[part][key] for r in runs if part in r and r[part].get(key) is not None]
    return statistics.median(values) if values else None


def _num(value, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _pair(runs: list[dict], part: str) -> str:
    p50, p99 = median(runs, part, "p50_ms"), median(runs, part, "p99_ms")
    return "–" if p50 is None else f"{_num(p50, 1)} / {_num(p99, 1)}"


def _probe_cells(entry: dict | None) -> list[str]:
    if not entry:
        return ["–", "–"]
    text = _num(entry["max_ms"])
    if entry["failed"] or entry["not_sent"]:
        text += f" ({entry['failed']} of {entry['probes']} failed"
        text += f", {entry['not_sent']} not sent)" if entry["not_sent"] else ")"
    return [text, "**yes**" if entry["blocked"] else "no"]


def table(rows: dict[str, list[dict]], bare_name: str | None) -> str:
    """One row per configuration: medians over the rounds; slow and busy from the last."""
    bare = median(rows.get(bare_name, []), "healthz", "req_per_cpu_s") if bare_name else None
    lines = [
        "| server | list: req/CPU-s | list: req/s | list: p50 / p99 ms | healthz: req/CPU-s "
        "| healthz: req/s | healthz: p50 / p99 ms | healthz ÷ bare app | 100 slow clients: "
        "max healthz ms | blocked | 2 exports running: max healthz ms | blocked "
        "| others' load, cores |",
        "|---|" + "---:|" * 12,
    ]
    for name, runs in rows.items():
        last = runs[-1]
        label = BY_NAME[last["config"]].label
        label = f"bare WSGI app, {label}" if name == bare_name else label
        health = median(runs, "healthz", "req_per_cpu_s")
        others = [r[p]["others_cores"] for r in runs for p in ("list", "healthz") if p in r]
        cells = [
            _num(median(runs, "list", "req_per_cpu_s")),
            _num(median(runs, "list", "rps")),
            _pair(runs, "list"),
            _num(health),
            _num(median(runs, "healthz", "rps")),
            _pair(runs, "healthz"),
            f"{health / bare:.2f}" if bare and health else "–",
            *_probe_cells(last.get("slow")),
            *_probe_cells(last.get("busy")),
            _num(statistics.median(others), 1) if others else "–",
        ]
        errors = sum(r[p]["errors"] for r in runs for p in ("list", "healthz") if p in r)
        seen: dict[str, int] = {}  # during the load (the slow and busy tests may well log some)
        for r in runs:
            for key, count in r["server_trouble"].get("load", {}).items():
                seen[key] = seen.get(key, 0) + count
        if errors or seen:
            label += f" ⚠ {errors} load errors; log: " + (
                ", ".join(f"{k} ×{n}" for k, n in seen.items()) or "clean"
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="10k", choices=["10k", "100k"])
    parser.add_argument("--only", default=",".join(BY_NAME), help="comma-separated configs")
    parser.add_argument("--parts", default="servers,stress,export", help="what to run")
    parser.add_argument("--rounds", type=int, default=3, help="load rounds (median shown)")
    parser.add_argument("--concurrency", type=int, default=8, help="load connections")
    parser.add_argument("--list-requests", type=int, default=300)
    parser.add_argument("--health-requests", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=100, help="requests before each phase")
    parser.add_argument("--bound", type=float, default=60, help="seconds per load phase, at most")
    parser.add_argument("--probe-timeout", type=float, default=5.0, help="client timeout, s")
    parser.add_argument("--slow-limit", type=float, default=45, help="slow-client test bound, s")
    parser.add_argument("--bare-like", default="gevent", choices=list(BY_NAME))
    parser.add_argument("--seeds", default="1,2,3", help="hash seeds for bench/stress.py")
    parser.add_argument("--export-size", default="100k", choices=["10k", "100k", "1m"])
    parser.add_argument("--export-timeout", type=float, default=1800, help="client timeout, s")
    parser.add_argument(
        "--export-server", default="gevent", choices=["gevent", "granian"], help="gevent: shipped"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))  # stop the servers first
    parts = set(args.parts.split(","))
    names = [n for n in args.only.split(",") if n]
    if unknown := [n for n in names if n not in BY_NAME]:
        sys.exit(f"unknown configurations: {unknown}; known: {list(BY_NAME)}")
    if shutil.which("wrk"):
        args.client = "wrk"
    else:
        args.client = "python"
        print(
            "wrk is not installed (Debian: apt-get install wrk): falling back to the Python "
            "client, which competes with the server for the 2 cores (lower req/s, higher "
            "latency; req/CPU-s still counts only the server's CPU)",
            flush=True,
        )
    if "nginx" in names and not shutil.which("nginx"):
        print("nginx is not installed (Debian: apt-get install nginx): skipping it", flush=True)
        names.remove("nginx")

    info = run.machine()
    result: dict = {
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": info,
        "load_average_before": os.getloadavg(),
        "app_code": run.app_fingerprint(),
        "settings": dict(vars(args)),
    }
    run.RESULTS.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict]] = {}
    bare_name = None
    if "servers" in parts:
        run.ensure_database("sqlite", args.size, 1, regenerate=False)
        args.database_url = run.database_for("sqlite", args.size)
        bare_name = f"bare-{args.bare_like}"
        plan = [(BY_NAME[n], APP) for n in names] + [(BY_NAME[args.bare_like], BARE)]
        for round_ in range(1, args.rounds + 1):
            print(f"round {round_} of {args.rounds} (load average {os.getloadavg()})", flush=True)
            for config, target in plan:
                name = config.name if target == APP else bare_name
                entry = measure(config, target, args, extras=round_ == args.rounds)
                rows.setdefault(name, []).append(entry)
        result["servers"] = rows
        result["table"] = table(rows, bare_name)
    if "stress" in parts:
        result["stress"] = stress(args.seeds.split(","))
    if "export" in parts:
        result["export"] = export_memory(args.export_size, args.export_timeout, args.export_server)
    result["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    result["load_average_after"] = os.getloadavg()
    result["app_code_at_end"] = run.app_fingerprint()

    stem = run.RESULTS / f"servers-{args.size}-{dt.datetime.now():%Y%m%d-%H%M}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    header = (
        f"{info['cpus']} CPUs ({info['cpu_model']}), Python {info['python']}, "
        f"Linux {info['kernel']}; {args.size} records (SQLite), client {args.client}, "
        f"{args.concurrency} connections, median of {args.rounds} rounds.\n\n"
    )
    if "table" in result:
        stem.with_suffix(".md").write_text(header + result["table"] + "\n")
        print("\n" + header + result["table"])
    print(f"\nwrote {stem.with_suffix('.json').relative_to(run.PROJECT_DIR)}")


if __name__ == "__main__":
    main()
