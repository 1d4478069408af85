"""Login spray vs. beacon latency: does guessing passwords slow the public endpoints down?

Runs the real `popup-mgr serve` (POPUP_TRUSTED_PROXIES=127.0.0.1, so X-Forwarded-For names the
guessing IPs) and measures POST /api/impression latency from a steady prober (about 50 beacons a
second) in three phases of the same run:

  baseline       no logins at all
  spray: 1 user  300 wrong passwords for "mike" from 60 IPs (5 each), started evenly over 13 s
                 (the attack's pace), up to 30 at a time
  spray: many    300 wrong passwords for 300 different usernames from 60 IPs: every guess is
                 hashed (nothing is slowed down per account), the worst case for the CPU

Prints per phase: beacon p50/p99/max, beacons sent, and the spray's answers by status and its
duration; then the p99 ratios against the baseline.

    .venv/bin/python bench/login_spray.py
"""
import collections
import concurrent.futures
import http.client
import multiprocessing
import os
import re
import statistics
import sys
import threading
import time
import urllib.parse
import uuid

import httpx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import BROWSER_UA, free_port, prepare_database, start_popup_mgr  # noqa: E402

from popup_mgr import db as database  # noqa: E402
from popup_mgr import users  # noqa: E402

GUESSES = 300
IPS = 60
SPRAY_CONCURRENCY = 30
SPRAY_SECONDS = 13          # the pace measured in the attack: 300 guesses in 13 s
BASELINE_S = 8
PROBE_INTERVAL_S = 0.02


class Prober(threading.Thread):
    """Sends impression beacons one after another and records each latency (ms)."""

    def __init__(self, base, token):
        super().__init__(daemon=True)
        self.base, self.token = base, token
        self.latencies, self.errors = [], 0
        self.stop = threading.Event()

    def run(self):
        headers = {"Content-Type": "text/plain;charset=UTF-8", "User-Agent": BROWSER_UA}
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                body = '{"token":"%s","event_id":"%s"}' % (self.token, uuid.uuid4().hex)
                started = time.perf_counter()
                try:
                    status = client.post(f"{self.base}/api/impression", content=body, headers=headers).status_code
                except httpx.HTTPError:
                    status = 0
                self.latencies.append((time.perf_counter() - started) * 1000)
                self.errors += status != 204
                time.sleep(PROBE_INTERVAL_S)


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def guess(base, ip, username):
    """One login attempt from ip: a fresh session (GET /login for the cookie and CSRF token),
    then the POST. Plain http.client: the guessing must cost the bench little CPU of its own."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request("GET", "/login")
        page = conn.getresponse()
        cookie = page.getheader("Set-Cookie", "").split(";")[0]
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode()).group(1)
        body = urllib.parse.urlencode({"username": username, "password": "Winter2026!guess", "csrf_token": token})
        conn.request("POST", "/login", body=body, headers={
            "Cookie": cookie, "X-Forwarded-For": ip, "Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def spray_in_process(base, usernames, network, results):
    ips = [f"10.{network}.{i // 250}.{i % 250 + 1}" for i in range(IPS)]
    jobs = [(ips[i % IPS], usernames[i % len(usernames)]) for i in range(GUESSES)]
    started = time.perf_counter()

    def paced(numbered):
        number, job = numbered
        time.sleep(max(0.0, started + number * SPRAY_SECONDS / GUESSES - time.perf_counter()))
        return guess(base, *job)
    with concurrent.futures.ThreadPoolExecutor(SPRAY_CONCURRENCY) as pool:
        statuses = list(pool.map(paced, enumerate(jobs)))
    results.put((dict(collections.Counter(statuses)), time.perf_counter() - started))


def spray(base, usernames, network):
    """The spray runs in a process of its own, so the prober's timings are not its GIL waits."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=spray_in_process, args=(base, usernames, network, results))
    process.start()
    outcome = results.get()
    process.join()
    return outcome


def phase(base, token, name, action):
    prober = Prober(base, token)
    prober.start()
    outcome = action()
    prober.stop.set()
    prober.join()
    lat = prober.latencies
    return {"name": name, "p50": statistics.median(lat), "p99": percentile(lat, 0.99), "max": max(lat),
            "beacons": len(lat), "errors": prober.errors, "outcome": outcome}


def main():
    path, token = prepare_database()
    conn = database.connect(str(path))
    users.create_user(conn, "mike", "correct horse battery staple")
    conn.close()
    port = free_port()
    os.environ["POPUP_TRUSTED_PROXIES"] = "127.0.0.1"
    server = start_popup_mgr(path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        results = [
            phase(base, token, "baseline", lambda: (time.sleep(BASELINE_S), (None, BASELINE_S))[1]),
            phase(base, token, "spray: 1 user", lambda: spray(base, ["mike"], 77)),
            phase(base, token, "spray: many users", lambda: spray(base, [f"user{i}" for i in range(GUESSES)], 78)),
        ]
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"login spray: {GUESSES} guesses from {IPS} IPs over {SPRAY_SECONDS} s, up to {SPRAY_CONCURRENCY} at a time; "
          f"{os.cpu_count()} cores; hash slots {getattr(users, 'HASH_SLOTS', 'unbounded')}")
    print(f"{'phase':<20} {'beacon p50':>10} {'p99':>9} {'max':>9} {'beacons':>8} {'errors':>6}  spray")
    for r in results:
        statuses, seconds = r["outcome"]
        spray_text = (", ".join(f"{code}: {n}" for code, n in sorted(statuses.items())) + f" in {seconds:.1f} s"
                      if statuses else "-")
        print(f"{r['name']:<20} {r['p50']:>8.1f}ms {r['p99']:>7.1f}ms {r['max']:>7.1f}ms {r['beacons']:>8}"
              f" {r['errors']:>6}  {spray_text}")
    base_p99 = results[0]["p99"]
    for r in results[1:]:
        print(f"{r['name']}: beacon p99 {r['p99'] / base_p99:.1f}x the baseline")


if __name__ == "__main__":
    main()
