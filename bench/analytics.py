"""Analytics speed on a big history: median latency of the analytics API, the dashboard and the
live view, measured against `popup-mgr serve` with its default settings.

    python bench/analytics.py                       # builds bench/results/analytics.db (10M impressions)
    python bench/analytics.py --db PATH             # reuses PATH if it already holds the history
    python bench/analytics.py --impressions 1000000 # a smaller run

Targets (issue 5): /api/analytics/all for 365 days, /api/analytics/mff for 30 days and the
dashboard page <= 200 ms median; the live view <= 50 ms.
"""
import argparse
import datetime as dt
import http.client
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from popup_mgr import create_app, demo, timeutil, users  # noqa: E402
from popup_mgr import db as database  # noqa: E402

TZ = "America/New_York"
TARGETS_MS = {"api_all_365d": 200, "api_mff_30d": 200, "dashboard": 200, "dashboard_today": 200,
              "dashboard_365d": 200, "live": 50}


def build(path, days, impressions, seed):
    """Create (or reuse) the history; returns generation seconds (None when reused)."""
    database.migrate(str(path))
    db = database.connect(str(path))
    try:
        have = db.execute("SELECT count(*) FROM impressions").fetchone()[0]
        if have >= impressions:
            print(f"reusing {path}: {have:,} impressions", flush=True)
            return None
        print(f"generating {impressions:,} impressions over {days} days into {path} ...", flush=True)
        started = time.monotonic()
        summary = demo.generate(db, days=days, impressions=impressions - have, seed=seed, tz=TZ)
        seconds = time.monotonic() - started
        print(f"  {summary['impressions']:,} impressions, {summary['clicks']:,} clicks, "
              f"{summary['conversions']:,} conversions in {seconds:.1f} s "
              f"({summary['impressions'] / seconds:,.0f} impressions/s, rollup rebuild included)", flush=True)
        return seconds
    finally:
        db.close()


def credentials(path):
    """(api token, admin session cookie) for the server that will use this database."""
    os.environ["POPUP_DB"] = str(path)
    app = create_app()
    db = database.connect(str(path))
    try:
        row = db.execute("SELECT id FROM users WHERE username = 'bench'").fetchone()
        user_id = row["id"] if row else users.create_user(db, "bench", "bench-password-123456")
        token = users.create_token(db, "bench")
    finally:
        db.close()
    value = app.session_interface.get_signing_serializer(app).dumps({"_user_id": str(user_id), "_fresh": True})
    return token, f"{app.config['SESSION_COOKIE_NAME']}={value}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(path, port):
    env = dict(os.environ, POPUP_DB=str(path))
    command = [str(Path(sys.executable).parent / "popup-mgr"), "serve", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def median_ms(port, path, headers, rounds):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    timings = []
    for index in range(rounds + 3):                    # three warm-up requests
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise SystemExit(f"{path}: HTTP {response.status} {body[:200]!r}")
        if index >= 3:
            timings.append(elapsed)
    conn.close()
    return statistics.median(timings), len(body)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=ROOT / "bench" / "results" / "analytics.db")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--impressions", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=25)
    args = parser.parse_args()
    args.db.parent.mkdir(parents=True, exist_ok=True)
    generation = build(args.db, args.days, args.impressions, args.seed)
    token, cookie = credentials(args.db)
    today = dt.date.fromisoformat(timeutil.today(TZ))
    year_ago, month_ago = today - dt.timedelta(days=364), today - dt.timedelta(days=29)
    port = free_port()
    server = serve(args.db, port)
    try:
        cases = {
            "api_all_365d": (f"/api/analytics/all?from={year_ago}&to={today}", {"Authorization": f"Bearer {token}"}),
            "api_mff_30d": (f"/api/analytics/mff?from={month_ago}&to={today}", {"Authorization": f"Bearer {token}"}),
            "dashboard": ("/admin/dashboard", {"Cookie": cookie}),   # default view: all, 30 days
            "dashboard_today": ("/admin/dashboard?range=today", {"Cookie": cookie}),   # hourly, from the ledger
            "dashboard_365d": (f"/admin/dashboard?range=custom&from={year_ago}&to={today}", {"Cookie": cookie}),
            "live": ("/admin/live/fragment", {"Cookie": cookie, "HX-Request": "true"}),
        }
        print(f"\n{'endpoint':<16} {'median ms':>10} {'target':>8}  {'bytes':>9}  verdict")
        failed = False
        for name, (path, headers) in cases.items():
            median, size = median_ms(port, path, headers, args.rounds)
            ok = median <= TARGETS_MS[name]
            failed |= not ok
            print(f"{name:<16} {median:>10.1f} {TARGETS_MS[name]:>8}  {size:>9,}  {'ok' if ok else 'SLOW'}")
    finally:
        server.terminate()
        server.wait(timeout=10)
    size = sum(f.stat().st_size for f in args.db.parent.glob(args.db.name + "*"))
    print(f"\ndatabase {args.db}: {size / 1e6:,.0f} MB (with WAL)"
          + (f"; generated in {generation:.0f} s" if generation else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
