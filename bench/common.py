"""Helpers for the benchmarks: a temp database with a campaign, the real `popup-mgr serve`."""
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from popup_mgr import create_app, timeutil  # noqa: E402
from popup_mgr import db as database  # noqa: E402
from popup_mgr.ingest import tokens  # noqa: E402
from tests.helpers import BROWSER_UA, wait_until_up  # noqa: E402,F401  (shared with the tests)

SECRET_KEY = "bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
POPUP_MGR = Path(sys.executable).with_name("popup-mgr")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_database(offers=1, rotations=None):
    """A fresh database in a temp dir with `offers` campaigns (priorities 1-10 in turn) served on
    every property, and rotations {property code: mode} set; returns (path, a token for one of them)."""
    path = Path(tempfile.mkdtemp(prefix="popup-bench-")) / "popup.db"
    create_app({"DATABASE": str(path), "SECRET_KEY": SECRET_KEY})
    db = database.connect(str(path))
    now = timeutil.iso_now()
    with database.transaction(db):
        for number in range(offers, 0, -1):
            campaign = db.execute(
                "INSERT INTO campaigns (tune_campaign_id, name, display_title, click_url, priority, created_at,"
                " updated_at) VALUES (?, ?, 'Free sample', ?, ?, ?, ?)",
                (number, f"Bench offer {number}", f"https://track.example.com/aff_c?offer_id={number}&aff_id=2",
                 (number - 1) % 10 + 1, now, now)).lastrowid
        for code, mode in (rotations or {}).items():
            db.execute("UPDATE properties SET rotation = ? WHERE code = ?", (mode, code))
    db.close()
    return path, tokens.sign(SECRET_KEY, campaign, "mff", "thankyou", "", int(time.time()))


def start_popup_mgr(db_path, port):
    # PYTHONPATH: serve this checkout's code, wherever an editable install of the package points.
    env = os.environ | {"POPUP_DB": str(db_path), "POPUP_SECRET_KEY": SECRET_KEY, "PYTHONPATH": str(PROJECT)}
    process = subprocess.Popen([str(POPUP_MGR), "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until_up(f"http://127.0.0.1:{port}/api/health")
    return process


def count_rows(db_path, table):
    db = database.connect(str(db_path))
    try:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        db.close()


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average():
    return os.getloadavg()[0]
