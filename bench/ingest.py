"""Ingest throughput with wrk (32 connections on 127.0.0.1), all in one run:

  bare     a bare Flask app whose one route answers 204, under the same waitress settings as
           `popup-mgr serve` (the budget: the HTTP layer)
  impression  POST /api/impression, a unique event_id per request, a real signed token
  offers   GET /api/offers/mff (skipped when the offers endpoint is not in this build)
  click    GET /c/<token> (302; every request stores a click)

Prints req/s, p99 latency, errors, the ratio to the bare app, and checks that the number of
impressions stored equals the number of 204s wrk received.

    .venv/bin/python bench/ingest.py [--duration 10] [--connections 32]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import uuid

from common import BROWSER_UA, count_rows, free_port, prepare_database, start_popup_mgr, wait_until_up

IMPRESSION_LUA = r"""
local threads, counter, prefix = {}, 0, ""
function setup(thread) thread:set("tid", #threads + 1); table.insert(threads, thread) end
function init(args) prefix = "RUN-" .. tid .. "-" end
function request()
  counter = counter + 1
  local body = '{"token":"TOKEN","event_id":"' .. prefix .. counter .. '"}'
  return wrk.format("POST", "/api/impression",
    {["Content-Type"] = "text/plain;charset=UTF-8", ["User-Agent"] = "UA"}, body)
end
acked = 0
function response(status, headers, body) if status == 204 then acked = acked + 1 end end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("acked") end
  io.write("ACKED " .. total .. "\n")
end
"""
# response() runs in each thread's Lua state; acked must be a global there for done() to read it.

BARE_APP = """
import sys
from flask import Flask
import waitress
from popup_mgr import cli
app = Flask("bare")
@app.get("/")
def bare():
    return "", 204
waitress.serve(app, host="127.0.0.1", port=int(sys.argv[1]), threads=cli.SERVER_THREADS,
               max_request_body_size=cli.MAX_REQUEST_BODY, ident="bare")
"""


def wrk(url, duration, connections, script=None, headers=()):
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    for header in headers:
        command += ["-H", header]
    if script:
        command += ["-s", script]
    output = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    return parse_wrk(output)


def parse_wrk(output):
    def number(pattern, default=0.0):
        match = re.search(pattern, output)
        return float(match.group(1)) if match else default
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "rps": number(r"Requests/sec:\s+([\d.]+)"),
        "requests": int(number(r"(\d+) requests in")),
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
        "non_2xx_3xx": int(number(r"Non-2xx or 3xx responses: (\d+)")),
        "socket_errors": sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
        "acked": int(number(r"ACKED (\d+)", -1)),
    }


def offers_route_exists():
    from popup_mgr import create_app
    app = create_app({"DATABASE": os.path.join(tempfile.mkdtemp(), "probe.db"), "SECRET_KEY": "x" * 40})
    return any(rule.rule.startswith("/api/offers/") for rule in app.url_map.iter_rules())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    bare_port = free_port()
    bare = subprocess.Popen([sys.executable, "-c", BARE_APP, str(bare_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db_path, token = prepare_database()
    popup_port = free_port()
    popup = start_popup_mgr(db_path, popup_port)
    results = {}
    try:
        wait_until_up(f"http://127.0.0.1:{bare_port}/")
        base = f"http://127.0.0.1:{popup_port}"
        results["bare Flask 204"] = wrk(f"http://127.0.0.1:{bare_port}/", args.duration, args.connections)

        script = os.path.join(tempfile.mkdtemp(), "impression.lua")
        with open(script, "w") as f:
            f.write(IMPRESSION_LUA.replace("TOKEN", token).replace('"UA"', f'"{BROWSER_UA}"')
                    .replace("RUN-", f"b{uuid.uuid4().hex[:8]}-"))
        before = count_rows(db_path, "impressions")
        results["POST /api/impression"] = wrk(f"{base}/api/impression", args.duration, args.connections, script)
        stored_impressions = count_rows(db_path, "impressions") - before

        if offers_route_exists():
            results["GET /api/offers/mff"] = wrk(f"{base}/api/offers/mff", args.duration, args.connections,
                                                 headers=[f"User-Agent: {BROWSER_UA}"])
        else:
            print("GET /api/offers/<property>: skipped (the offers endpoint is not in this build)")
        before_clicks = count_rows(db_path, "clicks")
        results["GET /c/<token>"] = wrk(f"{base}/c/{token}", args.duration, args.connections,
                                        headers=[f"User-Agent: {BROWSER_UA}"])
        stored_clicks = count_rows(db_path, "clicks") - before_clicks
    finally:
        popup.terminate()
        bare.terminate()
        popup.wait(10)
        bare.wait(10)

    report(results, stored_impressions, stored_clicks, args)


def report(results, stored_impressions, stored_clicks, args):
    bare_rps = results["bare Flask 204"]["rps"]
    print(f"\nwrk -t2 -c{args.connections} -d{args.duration}s on 127.0.0.1; waitress as `popup-mgr serve` runs it")
    print(f"{'endpoint':<24}{'req/s':>10}{'ratio':>8}{'p99 ms':>9}{'errors':>8}")
    for name, r in results.items():
        errors = r["non_2xx_3xx"] + r["socket_errors"]
        print(f"{name:<24}{r['rps']:>10.0f}{r['rps'] / bare_rps:>8.2f}{r['p99_ms']:>9.1f}{errors:>8}")
    impression = results["POST /api/impression"]
    in_flight = stored_impressions - impression["acked"]
    print(f"\nimpressions: 204s received {impression['acked']}, rows stored {stored_impressions};"
          f" {in_flight} stored whose 204 wrk never read (requests in flight when wrk stopped,"
          f" at most one per connection)")
    print(f"clicks: responses {results['GET /c/<token>']['requests']}, rows stored {stored_clicks}")
    checks = {
        "each endpoint >= 0.8x bare": all(r["rps"] >= 0.8 * bare_rps for r in results.values()),
        "no errors": all(r["non_2xx_3xx"] + r["socket_errors"] == 0 for r in results.values()),
        "impression p99 <= 20 ms": impression["p99_ms"] <= 20,
        # wrk stops mid-request: a request it sent may be committed after it stopped reading.
        "stored == 204s (+ in flight at stop)": 0 <= stored_impressions - impression["acked"] <= args.connections,
    }
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")


if __name__ == "__main__":
    main()
