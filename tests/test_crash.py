"""kill -9 under load: the real `popup-mgr serve` (waitress, subprocess) on a temp database,
several client threads recording every acknowledged event, SIGKILL at a random moment, restart.
Every acknowledged impression, click and conversion must be there exactly once, the database
intact, and `popup-mgr verify` must pass. Several rounds on the same database."""
import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest

from popup_mgr import create_app

from popup_mgr.ingest import tokens
from popup_mgr import db as database
from tests.helpers import BROWSER_UA, add_campaign, new_event_id

pytestmark = pytest.mark.slow

SECRET_KEY = "crash-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
POSTBACK_SECRET = "crash-postback-secret"
ROUNDS = 3
CLIENT_THREADS = 6
POPUP_MGR = Path(sys.executable).with_name("popup-mgr")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, db_path, port):
        env = os.environ | {"POPUP_DB": str(db_path), "POPUP_SECRET_KEY": SECRET_KEY,
                            "POPUP_POSTBACK_SECRET": POSTBACK_SECRET, "POPUP_ENV": "development"}
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen([str(POPUP_MGR), "serve", "--port", str(port)], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/api/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError("server did not start")

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


class Load:
    """Client threads sending impressions, clicks and postbacks; records what got a 2xx."""

    def __init__(self, url, token):
        self.url, self.token = url, token
        self.acked = {"impressions": set(), "clicks": {}, "conversions": set()}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(CLIENT_THREADS)]

    def start(self):
        for thread in self.threads:
            thread.start()

    def finish(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)

    def run(self, index):
        rng = random.Random(index)
        while not self.stop.is_set():
            try:
                roll = rng.random()
                if roll < 0.7:
                    self.impression()
                elif roll < 0.9:
                    self.click()
                else:
                    self.conversion(rng)
            except (OSError, http.client.HTTPException, ValueError):
                time.sleep(0.01)     # the server is gone: this event was never acknowledged

    def _post(self, path, body):
        request = urllib.request.Request(self.url + path, data=body.encode(), method="POST",
                                         headers={"Content-Type": "text/plain", "User-Agent": BROWSER_UA})
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()

    def impression(self):
        event_id = new_event_id()
        status, _ = self._post("/api/impression", json.dumps({"token": self.token, "event_id": event_id}))
        if status == 204:
            with self.lock:
                self.acked["impressions"].add(event_id)

    def click(self):
        event_id = new_event_id()
        status, body = self._post("/api/click", json.dumps({"token": self.token, "event_id": event_id}))
        if status == 200:
            with self.lock:
                self.acked["clicks"][event_id] = json.loads(body)["click_id"]

    def conversion(self, rng):
        with self.lock:
            click_ids = list(self.acked["clicks"].values())
        if not click_ids:
            return
        transaction_id = "tx-" + new_event_id()
        query = urlencode({"click_id": rng.choice(click_ids), "transaction_id": transaction_id,
                           "payout": "2.50", "secret": POSTBACK_SECRET})
        with urllib.request.urlopen(f"{self.url}/api/postback?{query}", timeout=5) as response:
            if response.status == 200:
                with self.lock:
                    self.acked["conversions"].add(transaction_id)


def stored(db, table, column):
    values = [row[0] for row in db.execute(f"SELECT {column} FROM {table}")]
    assert len(values) == len(set(values))
    return set(values)


def test_kill_9_under_load_loses_no_acknowledged_event(tmp_path):
    db_path = tmp_path / "popup.db"
    app = create_app({"DATABASE": str(db_path), "SECRET_KEY": SECRET_KEY})
    setup = database.connect(str(db_path))
    campaign = add_campaign(setup)
    setup.close()
    token = tokens.sign(SECRET_KEY, campaign, "mff", "thankyou", "", int(time.time()))
    del app
    rng = random.Random()
    all_acked = {"impressions": set(), "clicks": {}, "conversions": set()}
    for round_number in range(ROUNDS):
        server = Server(db_path, free_port())
        load = Load(server.url, token)
        load.start()
        time.sleep(rng.uniform(0.8, 2.0))
        server.kill()
        load.finish()
        all_acked["impressions"] |= load.acked["impressions"]
        all_acked["clicks"] |= load.acked["clicks"]
        all_acked["conversions"] |= load.acked["conversions"]
        assert load.acked["impressions"], f"round {round_number}: no load reached the server"
        print(f"crash round {round_number + 1}: acknowledged before kill -9: {len(load.acked['impressions'])}"
              f" impressions, {len(load.acked['clicks'])} clicks, {len(load.acked['conversions'])} conversions")

        server = Server(db_path, free_port())     # restart: WAL recovery
        server.kill()
        check_database(db_path, all_acked)


def check_database(db_path, acked):
    db = sqlite3.connect(db_path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert acked["impressions"] <= stored(db, "impressions", "event_id")
        clicks = dict(db.execute("SELECT event_id, click_id FROM clicks").fetchall())
        assert all(clicks.get(event_id) == click_id for event_id, click_id in acked["clicks"].items())
        assert acked["conversions"] <= stored(db, "conversions", "transaction_id")
    finally:
        db.close()
    env = os.environ | {"POPUP_DB": str(db_path), "POPUP_SECRET_KEY": SECRET_KEY}
    verify = subprocess.run([str(POPUP_MGR), "verify"], env=env, capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
