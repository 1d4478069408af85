"""What /metrics costs the hot paths, in nanoseconds per call (no server, no I/O):

  event       Metrics.event(kind, outcome): once per beacon, click and postback
  batch       Metrics.batch(size, seconds): once per group commit (two histogram observations)
  response    Metrics.response(route, status): once per HTTP answer
  wsgi        ResponseCounter around a minimal WSGI app, minus the bare app: per request
  scrape      exposition() with a database file, a backup directory and a job history (ms)

Each is the median of --rounds timings of --calls calls.

    .venv/bin/python bench/metrics_overhead.py [--calls 200000] [--rounds 5]
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from popup_mgr import db as database  # noqa: E402
from popup_mgr import metrics  # noqa: E402


def per_call_ns(function, calls, rounds):
    timings = []
    for _ in range(rounds):
        started = time.perf_counter_ns()
        function(calls)
        timings.append((time.perf_counter_ns() - started) / calls)
    return statistics.median(timings)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="popup-metrics-bench-"))
    database.migrate(workdir / "popup.db")
    m = metrics.Metrics(workdir / "popup.db", backup_dir=workdir / "backups", queue_depth=lambda: 3,
                        job_status=metrics.database_job_status(str(workdir / "popup.db")))

    def events(n):
        event = m.event
        for _ in range(n):
            event("impression", "counted")

    def batches(n):
        batch = m.batch
        for _ in range(n):
            batch(17, 0.0031)

    def responses(n):
        response = m.response
        for _ in range(n):
            response("/api/offers/<property>", 200)

    def bare_app(environ, start_response):
        start_response("204 No Content", [])
        return [b""]

    def drive(app):
        environ = {"PATH_INFO": "/api/impression", "REQUEST_METHOD": "POST"}

        def run(n):
            start = lambda status, headers, exc_info=None: None  # noqa: E731
            for _ in range(n):
                app(environ, start)
        return run

    counted = metrics.ResponseCounter(bare_app, m)
    figures = {
        "event": per_call_ns(events, args.calls, args.rounds),
        "batch": per_call_ns(batches, args.calls, args.rounds),
        "response": per_call_ns(responses, args.calls, args.rounds),
        "wsgi": per_call_ns(drive(counted), args.calls, args.rounds)
        - per_call_ns(drive(bare_app), args.calls, args.rounds),
    }
    scrape_ms = per_call_ns(lambda n: [m.exposition() for _ in range(n)], 200, args.rounds) / 1e6
    for name, ns in figures.items():
        print(f"{name:>9}: {ns:8.0f} ns per call")
    print(f"{'scrape':>9}: {scrape_ms:8.2f} ms per /metrics answer ({len(m.exposition()[0])} bytes)")


if __name__ == "__main__":
    main()
