"""`popup-mgr serve`, with the product's own waitress settings, keeps serving visitors while 200
slow clients trickle headers at it (the attack that stopped it with waitress's defaults)."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from popup_mgr import create_app
from popup_mgr import db as database
from tests.helpers import TEST_SECRET, add_campaign, token_for, wait_until_up
from tests.slow_clients import SlowClients, probe_for, summary

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parent.parent
POPUP_MGR = Path(sys.executable).with_name("popup-mgr")
ATTACK_SOCKETS = 200
ATTACK_S = 15
PROBE_TIMEOUT_S = 3.0


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    """(port, token): the real console script serving a database with one campaign."""
    path = tmp_path / "popup.db"
    app = create_app({"DATABASE": str(path), "SECRET_KEY": TEST_SECRET})
    db = database.connect(str(path))
    campaign = add_campaign(db)
    db.close()
    port = free_port()
    # PYTHONPATH: this checkout's code, whatever an editable install elsewhere points at.
    env = os.environ | {"POPUP_DB": str(path), "POPUP_SECRET_KEY": TEST_SECRET, "PYTHONPATH": str(PROJECT)}
    server = subprocess.Popen([str(POPUP_MGR), "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/api/health")
        yield port, token_for(app, campaign)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(15)


def test_visitors_are_served_during_a_slow_client_attack(served):
    port, token = served
    with SlowClients("127.0.0.1", port, sockets=ATTACK_SOCKETS, line_every_s=3.0) as attack:
        assert attack.open_sockets == ATTACK_SOCKETS
        results = probe_for("127.0.0.1", port, token, duration_s=ATTACK_S, timeout_s=PROBE_TIMEOUT_S)
        figures = summary(results)
        # The attack really was on for the whole time: its connections were still open.
        assert attack.open_sockets >= ATTACK_SOCKETS * 0.9
    assert figures["probes"] >= 20 and figures["timed_out"] == 0, figures
    assert {status for _kind, status, _s in results} <= {200, 204}, results
    # Served promptly, not just eventually (the bound is loose for a shared 2-core box).
    assert figures["max_ms"] < PROBE_TIMEOUT_S * 1000 and figures["p50_ms"] < 500, figures
