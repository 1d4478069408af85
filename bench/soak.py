"""Soak: a steady 1,000 impressions/s (default) against the real `popup-mgr serve` for a while,
reporting latency percentiles, errors and the server's RSS over time.

    .venv/bin/python bench/soak.py                       # the full 10 minutes
    .venv/bin/python bench/soak.py --duration 120        # a shorter run
    .venv/bin/python bench/soak.py --duration 120 --bare # the same load on a bare Flask app

Open loop: each client thread sends on a fixed schedule over a keep-alive connection, so a slow
server shows up as latency (measured from the scheduled send time) rather than as a lower rate.
"""
import argparse
import http.client
import os
import json
import statistics
import subprocess
import sys
import threading
import time
import uuid

from common import (BROWSER_UA, count_rows, cpu_seconds, free_port, load_average, prepare_database, rss_mb,
                    start_popup_mgr, wait_until_up)
from ingest import BARE_APP

SAMPLE_EVERY_S = 10


class Client(threading.Thread):
    def __init__(self, port, token, rate, deadline, prefix, path):
        super().__init__(daemon=True)
        self.path = path
        self.port, self.token, self.interval, self.deadline, self.prefix = port, token, 1.0 / rate, deadline, prefix
        self.latencies, self.errors, self.acked = [], 0, 0

    def run(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Content-Type": "text/plain;charset=UTF-8", "User-Agent": BROWSER_UA}
        scheduled, sequence = time.monotonic(), 0
        while scheduled < self.deadline:
            delay = scheduled - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sequence += 1
            body = json.dumps({"token": self.token, "event_id": f"{self.prefix}-{sequence}"})
            try:
                connection.request("POST", self.path, body, headers)
                response = connection.getresponse()
                response.read()
                if response.status == 204:
                    self.acked += 1
                else:
                    self.errors += 1
            except OSError:
                self.errors += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            self.latencies.append(time.monotonic() - scheduled)
            scheduled += self.interval


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=600, help="seconds (default 600)")
    parser.add_argument("--rate", type=int, default=1000, help="impressions per second (default 1000)")
    parser.add_argument("--clients", type=int, default=16, help="client threads (default 16)")
    parser.add_argument("--bare", action="store_true",
                        help="drive bench/ingest.py's bare Flask app instead (a baseline for CPU and latency)")
    args = parser.parse_args()

    db_path, token = prepare_database()
    port = free_port()
    if args.bare:
        server = subprocess.Popen([sys.executable, "-c", BARE_APP, str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until_up(f"http://127.0.0.1:{port}/")
    else:
        server = start_popup_mgr(db_path, port)
    run_id = uuid.uuid4().hex[:8]
    try:
        start, cpu_start = time.monotonic(), cpu_seconds(server.pid)
        deadline = start + args.duration
        clients = [Client(port, token, args.rate / args.clients, deadline, f"soak{run_id}-{i}",
                          "/" if args.bare else "/api/impression")
                   for i in range(args.clients)]
        for client in clients:
            client.start()
        print(f"soak: {args.rate}/s for {args.duration}s, {args.clients} keep-alive clients, server pid {server.pid}")
        print(f"{'t (s)':>6}{'RSS MB':>9}{'sent':>9}{'p99 ms (recent)':>18}{'load avg':>10}")
        rss = []
        while any(client.is_alive() for client in clients):
            time.sleep(min(SAMPLE_EVERY_S, max(0.1, deadline - time.monotonic() + 0.5)))
            rss.append(rss_mb(server.pid))
            latencies = [value for client in clients for value in client.latencies[-2000:]]
            sent = sum(len(client.latencies) for client in clients)
            print(f"{time.monotonic() - start:>6.0f}{rss[-1]:>9.1f}{sent:>9}{percentile(latencies, 0.99) * 1000:>18.1f}{load_average():>10.1f}")
        for client in clients:
            client.join()
        elapsed = time.monotonic() - start
        server_cpu = cpu_seconds(server.pid) - cpu_start
    finally:
        server.terminate()
        server.wait(10)

    latencies = [value for client in clients for value in client.latencies]
    acked = sum(client.acked for client in clients)
    errors = sum(client.errors for client in clients)
    stored = acked if args.bare else count_rows(db_path, "impressions")
    print(f"\nsent {len(latencies)} in {elapsed:.0f}s = {len(latencies) / elapsed:.0f}/s; 204s {acked}; errors {errors};"
          f" stored {stored} ({'equal to the 204s' if stored == acked else 'DIFFERENT from the 204s'})")
    print(f"latency from scheduled send: p50 {percentile(latencies, 0.5) * 1000:.1f} ms,"
          f" p99 {percentile(latencies, 0.99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")
    print(f"server CPU: {server_cpu:.0f} s in {elapsed:.0f} s = {100 * server_cpu / elapsed:.0f}% of one core"
          f" ({1e6 * server_cpu / max(1, len(latencies)):.0f} µs per impression);"
          f" machine load average now {load_average():.1f} on {os.cpu_count()} cores")
    first_half = statistics.mean(rss[: max(1, len(rss) // 2)])
    print(f"server RSS: start {rss[0]:.1f} MB, end {rss[-1]:.1f} MB, max {max(rss):.1f} MB,"
          f" mean first half {first_half:.1f} MB, mean second half {statistics.mean(rss[len(rss) // 2:]):.1f} MB")
    print(f"  {'PASS' if errors == 0 else 'FAIL'}  no errors")
    print(f"  {'PASS' if max(rss) < 150 else 'FAIL'}  RSS < 150 MB")
    print(f"  {'PASS' if stored == acked else 'FAIL'}  stored == 204s")


if __name__ == "__main__":
    main()
