"""Disaster-recovery drill with Litestream, end to end with the real binaries.

`popup-mgr serve` runs under `litestream replicate -exec`, replicating to a local file replica
with short intervals; a campaign is added through the API (token from `popup-mgr create-token`),
offer tokens come from /api/offers/mff, and client threads send impression beacons, noting when
each 204 arrived. Then both processes are killed with SIGKILL (Litestream first, so it gets no
chance of a last upload), the replica is restored into a new directory with `litestream
restore`, and the restored file must pass `PRAGMA integrity_check` and `popup-mgr verify`, and
hold every impression acknowledged more than the replication lag (monitor + sync interval,
plus half a second of scheduling slack) before the kill. Prints the measured recovery point (events lost, and over what window) and
recovery time (restore, and restore until a server answers on the restored file).

Run it alone: .venv/bin/python -m pytest tests/test_litestream_drill.py -s -p no:cacheprovider
"""
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
POPUP_MGR = BIN / "popup-mgr"
LITESTREAM = BIN / "litestream"
PROJECT = Path(__file__).resolve().parent.parent
SECRET_KEY = "drill-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
MONITOR_INTERVAL_S = 0.1     # how often Litestream looks for new commits in the WAL
SYNC_INTERVAL_S = 1.0        # how often it ships them to the replica
# What may be lost: commits not yet seen by the monitor, plus those waiting for the next sync,
# plus Litestream's own work on a busy 2-core box (measured up to about 0.2 s over the two).
SCHEDULING_SLACK_S = 0.5
REPLICATION_LAG_S = MONITOR_INTERVAL_S + SYNC_INTERVAL_S + SCHEDULING_SLACK_S
LOAD_SECONDS = 6.0
CLIENT_THREADS = 4
# Each client pauses between beacons: about 150 a second in all, 13 million a day, a hundred times
# today's traffic, while leaving Litestream its share of the 2-core box (flat out, the clients
# would measure CPU starvation rather than replication).
CLIENT_PAUSE_S = 0.02
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"

CONFIG = """\
dbs:
  - path: {db}
    monitor-interval: {monitor}s
    replica:
      type: file
      path: {replica}
      sync-interval: {sync}s
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(db_path):
    return os.environ | {"POPUP_DB": str(db_path), "POPUP_SECRET_KEY": SECRET_KEY, "POPUP_ENV": "development"}


def wait_healthy(url, process, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/api/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not answer /api/health")


def children_of(pid):
    """Pids whose parent is pid (read from /proc: no extra package needed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def request(url, body=None, headers=None, method=None):
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    with urllib.request.urlopen(req, timeout=5) as response:
        return response.status, response.read()


def add_campaign_through_the_api(url, db_path):
    token = subprocess.run([str(POPUP_MGR), "create-token", "drill"], env=environment(db_path),
                           capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    body = json.dumps({"tune_campaign_id": 4242, "aff_id": 7, "name": "Drill sweeps", "display_title": "Win $500",
                       "click_url": "https://mode.go2cloud.org/aff_c?offer_id=4242&aff_id=7", "payout": "4.50",
                       "properties": ["mff"]}).encode()
    status, _ = request(f"{url}/api/campaigns", body, {"Authorization": f"Bearer {token}",
                                                       "Content-Type": "application/json"})
    assert status == 201


class Beacons:
    """Impression beacons from several threads; remembers when each 204 arrived."""

    def __init__(self, url, offer_token):
        self.url, self.offer_token = url, offer_token
        self.acked = {}                       # event_id -> time.monotonic() of its 204
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(CLIENT_THREADS)]

    def run(self):
        while not self.stop.is_set():
            event_id = uuid.uuid4().hex
            body = json.dumps({"token": self.offer_token, "event_id": event_id}).encode()
            try:
                status, _ = request(f"{self.url}/api/impression", body,
                                    {"Content-Type": "text/plain", "User-Agent": BROWSER_UA})
            except OSError:
                time.sleep(0.01)              # the server is gone: not acknowledged
                continue
            if status == 204:
                with self.lock:
                    self.acked[event_id] = time.monotonic()
            self.stop.wait(CLIENT_PAUSE_S)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(10)


def test_deploy_template_is_valid_for_the_pinned_litestream(tmp_path):
    """deploy/litestream.yml parses with the pinned binary, every ${VAR} filled from the environment."""
    env = os.environ | {"POPUP_DB": str(tmp_path / "popup.db"), "LITESTREAM_BUCKET": "mode-popup-backups",
                        "LITESTREAM_PATH": "popup_mgr/popup.db", "LITESTREAM_ENDPOINT": "http://127.0.0.1:9",
                        "LITESTREAM_REGION": "us-west-004", "LITESTREAM_ACCESS_KEY_ID": "id",
                        "LITESTREAM_SECRET_ACCESS_KEY": "secret"}
    result = subprocess.run([str(LITESTREAM), "databases", "-config", str(PROJECT / "deploy" / "litestream.yml")],
                            env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "popup.db") in result.stdout and "s3" in result.stdout


def test_kill_9_then_restore_from_the_replica(tmp_path):
    db_path, replica = tmp_path / "live" / "popup.db", tmp_path / "replica"
    db_path.parent.mkdir()
    subprocess.run([str(POPUP_MGR), "init-db"], env=environment(db_path), check=True, capture_output=True,
                   timeout=60)
    config = tmp_path / "litestream.yml"
    config.write_text(CONFIG.format(db=db_path, replica=replica, monitor=MONITOR_INTERVAL_S, sync=SYNC_INTERVAL_S))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    replicator = subprocess.Popen(
        [str(LITESTREAM), "replicate", "-config", str(config), "-exec", f"{POPUP_MGR} serve --port {port}"],
        env=environment(db_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_healthy(url, replicator)
        add_campaign_through_the_api(url, db_path)
        _, offers = request(f"{url}/api/offers/mff")
        [offer] = json.loads(offers)["offers"]
        with Beacons(url, offer["token"]) as beacons:
            time.sleep(LOAD_SECONDS)
            [server] = children_of(replicator.pid)
            killed_at = time.monotonic()
            os.kill(replicator.pid, signal.SIGKILL)
            os.kill(server, signal.SIGKILL)
    finally:
        if replicator.poll() is None:
            os.killpg(replicator.pid, signal.SIGKILL)
        replicator.wait(10)
    acked = dict(beacons.acked)
    assert len(acked) > 300, "the load did not reach the server"

    restored = tmp_path / "newbox" / "popup.db"
    restored.parent.mkdir()
    started = time.monotonic()
    subprocess.run([str(LITESTREAM), "restore", "-o", str(restored), f"file://{replica}"],
                   check=True, capture_output=True, timeout=60)
    restore_s = time.monotonic() - started

    conn = sqlite3.connect(restored)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {row[0] for row in conn.execute("SELECT event_id FROM impressions")}
    conn.close()
    verify = subprocess.run([str(POPUP_MGR), "verify"], env=environment(restored), capture_output=True,
                            text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    port = free_port()
    server_started = time.monotonic()
    server = subprocess.Popen([str(POPUP_MGR), "serve", "--port", str(port)], env=environment(restored),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server)
        serving_s = restore_s + time.monotonic() - server_started
        # The restored server accepts the offer token issued before the disaster (same secret).
        status, _ = request(f"http://127.0.0.1:{port}/api/impression",
                            json.dumps({"token": offer["token"], "event_id": uuid.uuid4().hex}).encode(),
                            {"Content-Type": "text/plain", "User-Agent": BROWSER_UA})
        assert status == 204
    finally:
        server.kill()
        server.wait(10)

    lost = {event_id: at for event_id, at in acked.items() if event_id not in stored}
    old_enough = {event_id for event_id, at in acked.items() if at < killed_at - REPLICATION_LAG_S}
    window_s = killed_at - min(lost.values()) if lost else 0.0
    print(f"\nLitestream drill (monitor {MONITOR_INTERVAL_S} s, sync {SYNC_INTERVAL_S} s):"
          f" {len(acked)} impressions acknowledged in {LOAD_SECONDS:.0f} s;"
          f" RPO: {len(lost)} lost, all acknowledged in the last {window_s:.2f} s before the kill;"
          f" RTO: litestream restore {restore_s:.2f} s, restore plus server start {serving_s:.2f} s")
    assert old_enough <= stored, f"{len(old_enough - stored)} events older than the replication lag were lost"
    assert window_s <= REPLICATION_LAG_S
