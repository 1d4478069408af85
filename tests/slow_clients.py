"""A bounded slow-client attack and probes of normal traffic, shared by
tests/test_slow_clients.py and bench/slow_clients.py.

The attack opens `sockets` connections that each send the start of a request and then one more
header line every `line_every_s` seconds, never finishing it (the classic slowloris): each one
holds a server connection slot while sending almost nothing. The probes are what visitors do
meanwhile: fetch the offers and send an impression beacon, each on a new connection, and each
either answered within `timeout_s` or counted as timed out."""
import http.client
import json
import socket
import threading
import time
import uuid


class SlowClients:
    def __init__(self, host, port, sockets=200, line_every_s=3.0):
        self.host, self.port, self.count, self.line_every_s = host, port, sockets, line_every_s
        self.sockets = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)

    def __enter__(self):
        for n in range(self.count):
            s = socket.socket()
            s.settimeout(2)
            try:
                s.connect((self.host, self.port))
                s.sendall(f"GET /api/offers/mff?slow={n} HTTP/1.1\r\nHost: {self.host}\r\n".encode())
            except OSError:
                s.close()
                continue
            self.sockets.append(s)
        self.thread.start()
        return self

    def _trickle(self):
        line = 0
        while not self.stop.wait(self.line_every_s):
            line += 1
            for s in list(self.sockets):
                try:
                    s.sendall(f"X-Slow-{line}: {line}\r\n".encode())
                except OSError:
                    self.sockets.remove(s)     # the server closed it: that is its defence working

    def __exit__(self, *_exc):
        self.stop.set()
        self.thread.join(10)
        for s in self.sockets:
            s.close()

    @property
    def open_sockets(self):
        return len(self.sockets)


def probe_offers(host, port, timeout_s):
    connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        connection.request("GET", "/api/offers/mff")
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def probe_impression(host, port, timeout_s, token):
    body = json.dumps({"token": token, "event_id": uuid.uuid4().hex})
    connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        connection.request("POST", "/api/impression", body=body,
                           headers={"Content-Type": "text/plain;charset=UTF-8",
                                    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Probe/1.0"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def probe_for(host, port, token, duration_s, every_s=0.5, timeout_s=3.0):
    """Alternate offers and impression probes for duration_s; returns a list of
    (kind, status or None when timed out / refused, seconds)."""
    results = []
    deadline = time.monotonic() + duration_s
    kinds = (("offers", lambda: probe_offers(host, port, timeout_s)),
             ("impression", lambda: probe_impression(host, port, timeout_s, token)))
    n = 0
    while time.monotonic() < deadline:
        kind, probe = kinds[n % 2]
        n += 1
        started = time.monotonic()
        try:
            status = probe()
        except OSError:
            status = None
        results.append((kind, status, time.monotonic() - started))
        time.sleep(max(0.0, every_s - (time.monotonic() - started)))
    return results


def summary(results):
    """{"probes", "answered", "timed_out", "p50_ms", "p99_ms", "max_ms"} of probe results."""
    answered = sorted(seconds for _kind, status, seconds in results if status is not None)

    def quantile(q):
        if not answered:
            return None
        return round(answered[min(len(answered) - 1, int(q * len(answered)))] * 1000, 1)

    return {"probes": len(results), "answered": len(answered), "timed_out": len(results) - len(answered),
            "p50_ms": quantile(0.50), "p99_ms": quantile(0.99), "max_ms": quantile(1.0)}
