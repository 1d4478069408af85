"""Ingest throughput with wrk (32 connections on 127.0.0.1), all in one run:

  bare     a bare Flask app whose one route answers 204, under the same waitress settings as
           `popup-mgr serve` (the budget: the HTTP layer)
  impression  POST /api/impression, a unique event_id per request, a real signed token
  offers   GET /api/offers/mff (skipped when the offers endpoint is not in this build); with
           --rotation priority,even,auto one line per mode, each on its own property (mff, mmm,
           mcad), all serving the same --offers campaigns
  click    GET /c/<token> (302; every request stores a click)

Every endpoint runs --rounds times, interleaved, and the median run is reported, so that load
from other processes on a shared box affects all of them alike. Ratios compare like with like:
the impression against the bare app driven by the same wrk Lua script (POSTs with unique bodies:
the script itself costs the shared CPU), the GETs against the bare GET.

Prints req/s, p99 latency, errors, the ratios, and checks that the impressions stored equal the
204s wrk received (plus those in flight when a run stopped).

    .venv/bin/python bench/ingest.py [--duration 5] [--rounds 3] [--connections 32]
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
-- os.time() differs between runs (each lasts seconds), so a rerun of this script never replays ids.
function init(args) prefix = "RUN-" .. tid .. "-" .. os.time() .. "-" end
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
@app.route("/", methods=["GET", "POST"])
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


def impression_script(token, path):
    """The wrk Lua script for POSTs with unique event ids, to `path`."""
    script = os.path.join(tempfile.mkdtemp(), "impression.lua")
    with open(script, "w") as f:
        f.write(IMPRESSION_LUA.replace("TOKEN", token).replace('"UA"', f'"{BROWSER_UA}"')
                .replace("RUN-", f"b{uuid.uuid4().hex[:8]}-").replace('"/api/impression"', f'"{path}"'))
    return script


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of every endpoint, interleaved; the median is reported (default 3)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--offers", type=int, default=1, help="campaigns served (default 1)")
    parser.add_argument("--rotation", default="",
                        help="rotation modes to measure, comma-separated, one property each (default: mff as is)")
    args = parser.parse_args()
    modes = [mode for mode in args.rotation.split(",") if mode]
    rotations = dict(zip(("mff", "mmm", "mcad", "mmd"), modes))

    bare_port = free_port()
    bare = subprocess.Popen([sys.executable, "-c", BARE_APP, str(bare_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db_path, token = prepare_database(args.offers, rotations)
    popup_port = free_port()
    popup = start_popup_mgr(db_path, popup_port)
    base, bare_url = f"http://127.0.0.1:{popup_port}", f"http://127.0.0.1:{bare_port}/"
    ua = [f"User-Agent: {BROWSER_UA}"]
    # (name, url, script, headers, baseline name)
    runs = [("bare Flask 204 (GET)", bare_url, None, ua, None),
            ("bare Flask 204 (POST, same client script)", bare_url, impression_script(token, "/"), ua, None),
            ("POST /api/impression", f"{base}/api/impression", impression_script(token, "/api/impression"), ua,
             "bare Flask 204 (POST, same client script)"),
            ("GET /c/<token>", f"{base}/c/{token}", None, ua, "bare Flask 204 (GET)")]
    if offers_route_exists():
        for position, (code, mode) in enumerate(rotations.items() or [("mff", None)]):
            name = f"GET /api/offers/{code}" + (f" ({mode}, {args.offers} offers)" if mode else "")
            runs.insert(3 + position, (name, f"{base}/api/offers/{code}", None, ua, "bare Flask 204 (GET)"))
    else:
        print("GET /api/offers/<property>: skipped (the offers endpoint is not in this build)")
    samples = {name: [] for name, *_ in runs}
    try:
        wait_until_up(bare_url)
        before = {table: count_rows(db_path, table) for table in ("impressions", "clicks")}
        for _ in range(args.rounds):
            for name, url, script, headers, _baseline in runs:
                samples[name].append(wrk(url, args.duration, args.connections, script, headers))
        stored = {table: count_rows(db_path, table) - before[table] for table in before}
    finally:
        popup.terminate()
        bare.terminate()
        popup.wait(10)
        bare.wait(10)
    report(runs, samples, stored, args)


def median_run(runs):
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]


def report(runs, samples, stored, args):
    print(f"\nwrk -t2 -c{args.connections} -d{args.duration}s x {args.rounds} interleaved rounds on 127.0.0.1"
          f" (median run shown); waitress as `popup-mgr serve` runs it; machine load now {os.getloadavg()[0]:.1f}")
    print(f"{'endpoint':<46}{'req/s':>8}{'ratio':>7}{'p99 ms':>8}{'errors':>8}   all runs req/s")
    ratios = {}
    for name, _url, _script, _headers, baseline in runs:
        run = median_run(samples[name])
        ratio = run["rps"] / median_run(samples[baseline])["rps"] if baseline else 1.0
        ratios[name] = ratio
        errors = sum(r["non_2xx_3xx"] + r["socket_errors"] for r in samples[name])
        print(f"{name:<46}{run['rps']:>8.0f}{ratio:>7.2f}{run['p99_ms']:>8.1f}{errors:>8}   "
              + " ".join(f"{r['rps']:.0f}" for r in samples[name]))
    impression_ratio_get = (median_run(samples["POST /api/impression"])["rps"]
                            / median_run(samples["bare Flask 204 (GET)"])["rps"])
    print(f"(POST /api/impression against the bare GET instead: {impression_ratio_get:.2f})")
    acked = sum(r["acked"] for r in samples["POST /api/impression"])
    in_flight = stored["impressions"] - acked
    print(f"\nimpressions: 204s received {acked}, rows stored {stored['impressions']}; {in_flight} stored whose"
          f" 204 wrk never read (in flight when a wrk run stopped: at most {args.connections} per run)")
    print(f"clicks: responses {sum(r['requests'] for r in samples['GET /c/<token>'])}, rows stored {stored['clicks']}")
    impression = median_run(samples["POST /api/impression"])
    checks = {
        "each endpoint >= 0.8x its bare baseline": all(ratio >= 0.8 for ratio in ratios.values()),
        "no errors": all(r["non_2xx_3xx"] + r["socket_errors"] == 0 for runs_ in samples.values() for r in runs_),
        "impression p99 <= 20 ms (median run)": impression["p99_ms"] <= 20,
        "stored == 204s (+ in flight at stop)": 0 <= in_flight <= args.connections * args.rounds,
    }
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")


if __name__ == "__main__":
    main()
