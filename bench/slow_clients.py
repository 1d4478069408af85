"""Visitors' latency during a slow-client (slowloris) attack on the real `popup-mgr serve`.

In one run, against one server with the product's own waitress settings:

  baseline  probes alone: offers and impression beacons, each on a new connection, every 0.5 s
  attack    the same probes while --sockets connections trickle one header line every
            --line-every seconds and never finish their request

Prints probes answered and timed out (a probe waits at most --timeout seconds), p50/p99/max
latency of both phases and their ratio, and how many attacking connections the server had closed.

    .venv/bin/python bench/slow_clients.py [--sockets 200] [--duration 15] [--line-every 5]
"""
import argparse
import signal
import sys

from common import PROJECT, free_port, prepare_database, start_popup_mgr  # noqa: F401 (sys.path)

from tests.slow_clients import SlowClients, probe_for, summary  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--line-every", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args()

    path, token = prepare_database()
    port = free_port()
    server = start_popup_mgr(path, port)
    try:
        baseline = summary(probe_for("127.0.0.1", port, token, args.duration, timeout_s=args.timeout))
        with SlowClients("127.0.0.1", port, sockets=args.sockets, line_every_s=args.line_every) as attack:
            opened = attack.open_sockets
            attacked = summary(probe_for("127.0.0.1", port, token, args.duration, timeout_s=args.timeout))
            still_open = attack.open_sockets
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(15)

    print(f"slow clients: {opened} connections, one header line every {args.line_every:g} s, "
          f"{args.duration:g} s per phase, probe timeout {args.timeout:g} s")
    print(f"{'phase':<10}{'probes':>8}{'answered':>10}{'timed out':>11}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name, figures in (("baseline", baseline), ("attack", attacked)):
        print(f"{name:<10}{figures['probes']:>8}{figures['answered']:>10}{figures['timed_out']:>11}"
              f"{_ms(figures['p50_ms']):>9}{_ms(figures['p99_ms']):>9}{_ms(figures['max_ms']):>9}")
    if baseline["p99_ms"] and attacked["p99_ms"]:
        print(f"p99 attack / baseline: {attacked['p99_ms'] / baseline['p99_ms']:.2f}x")
    print(f"attacking connections still open at the end: {still_open} of {opened}")
    return 0 if attacked["timed_out"] == 0 else 1


def _ms(value):
    return "-" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    sys.exit(main())
