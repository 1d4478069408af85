"""Visitor privacy: client IP resolution, keyed hashes, daily salts deleted after 48 hours."""
import pytest

from popup_mgr import create_app, netaddr

from popup_mgr.ingest import bots, privacy
from tests.helpers import BOT_UA, BROWSER_UA, add_campaign, beacon_body, ms, token_for

DAY_MS = 24 * 3600 * 1000
NOV_24 = 1_795_478_400_000          # 2026-11-24T00:00:00Z

TRUSTED = "10.0.0.0/8, 127.0.0.1"


@pytest.mark.parametrize("remote, forwarded, trusted, expected", [
    ("203.0.113.5", None, "", "203.0.113.5"),
    ("203.0.113.5", "1.2.3.4", "", "203.0.113.5"),                    # no trusted proxy: header ignored
    ("203.0.113.5", "1.2.3.4", TRUSTED, "203.0.113.5"),               # peer is not a trusted proxy
    ("127.0.0.1", "198.51.100.9", TRUSTED, "198.51.100.9"),
    ("127.0.0.1", "6.6.6.6, 198.51.100.9, 10.1.1.1", TRUSTED, "198.51.100.9"),   # forged left part ignored
    ("127.0.0.1", "10.2.2.2, 10.1.1.1", TRUSTED, "127.0.0.1"),        # only proxies: the socket's peer
    ("127.0.0.1", "not-an-ip", TRUSTED, "127.0.0.1"),
    ("127.0.0.1", "2001:db8::1", TRUSTED, "2001:db8::1"),
])
def test_client_ip(remote, forwarded, trusted, expected):
    assert netaddr.client_ip({"TRUSTED_PROXIES": trusted}, remote, forwarded) == expected


def test_bad_network_lists_are_refused():
    with pytest.raises(netaddr.NetworkListError):
        netaddr.parse_networks("10.0.0.0/8 example.com")


def test_hash_is_keyed_and_rotates_by_day(app):
    hasher = privacy.VisitorHasher(app.config["DATABASE"])
    same_day = {hasher.visitor_hash("198.51.100.9", BROWSER_UA, NOV_24 + h * 3600_000) for h in (1, 23)}
    assert len(same_day) == 1, "one visitor is one hash within a UTC day (unique visitors countable)"
    (today,) = same_day
    assert hasher.visitor_hash("198.51.100.9", BROWSER_UA, NOV_24 + DAY_MS) != today
    assert hasher.visitor_hash("198.51.100.10", BROWSER_UA, NOV_24) != today
    assert "198.51.100.9" not in today and len(today) == 32


def test_salts_are_deleted_48_hours_after_their_day_began(db):
    for offset in range(4):
        privacy.ensure_salt(db, privacy.utc_day(NOV_24 + offset * DAY_MS), NOV_24 + offset * DAY_MS + 3600_000)
    days = [r["day"] for r in db.execute("SELECT day FROM visitor_salts ORDER BY day")]
    # At 2026-11-27 01:00Z the 24th (began 73 h ago) and 25th (began 49 h ago) are gone.
    assert days == ["2026-11-26", "2026-11-27"]


def test_stored_events_never_contain_the_ip_or_user_agent(client, app, db):
    token = token_for(app, add_campaign(db, app=app))
    client.post("/api/impression", data=beacon_body(token), headers={"User-Agent": BROWSER_UA},
                environ_base={"REMOTE_ADDR": "198.51.100.77"})
    dump = "\n".join(db.iterdump())
    assert "198.51.100.77" not in dump and "Chrome/131" not in dump


def test_forwarded_for_is_used_only_behind_a_trusted_proxy(tmp_path):
    """Two visitors behind one trusted proxy get different hashes; without the setting, one."""
    def hashes(trusted):
        app = create_app({"TESTING": True, "DATABASE": str(tmp_path / f"{bool(trusted)}.db"),
                          "SECRET_KEY": "k" * 40, "TRUSTED_PROXIES": trusted})
        from popup_mgr import db as database
        conn = database.connect(app.config["DATABASE"])
        token = token_for(app, add_campaign(conn, app=app))
        client = app.test_client()
        for visitor in ("198.51.100.1", "198.51.100.2"):
            client.post("/api/impression", data=beacon_body(token), environ_base={"REMOTE_ADDR": "127.0.0.1"},
                        headers={"User-Agent": BROWSER_UA, "X-Forwarded-For": visitor})
        return {r[0] for r in conn.execute("SELECT visitor_hash FROM impressions")}
    assert len(hashes("127.0.0.1")) == 2
    assert len(hashes("")) == 1


@pytest.mark.parametrize("user_agent, is_bot", [
    ("", True), ("   ", True), (BOT_UA, True), ("curl/8.5.0", True), ("python-requests/2.32", True),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36", True),
    (BROWSER_UA, False),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.5 Mobile/15E148 Safari/604.1", False),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", False),
])
def test_bot_user_agents(user_agent, is_bot):
    assert bots.is_bot(user_agent) is is_bot


def test_start_up_deletes_expired_salts(app, db):
    from popup_mgr import create_app, timeutil
    db.execute("INSERT INTO visitor_salts (day, salt, created_ms) VALUES ('2001-01-01', x'00', 0)")
    privacy.ensure_salt(db, privacy.utc_day(timeutil.now_ms()), timeutil.now_ms())
    create_app({"TESTING": True, "DATABASE": app.config["DATABASE"], "SECRET_KEY": "k" * 40})
    assert [r[0] for r in db.execute("SELECT day FROM visitor_salts")] == [privacy.utc_day(timeutil.now_ms())]


def test_remembered_hashes_never_outlive_their_day(app):
    """The hasher remembers today's (ip, user agent) -> hash to skip repeated HMACs; a new day's
    first beacon forgets the previous day's, so no IP stays in memory beside a deleted salt."""
    hasher = privacy.VisitorHasher(app.config["DATABASE"])
    day_one, day_two = ms("2026-03-01 12:00:00"), ms("2026-03-02 12:00:00")
    first = hasher.visitor_hash("203.0.113.7", "UA", day_one)
    assert hasher.visitor_hash("203.0.113.7", "UA", day_one) == first
    assert hasher.visitor_hash("203.0.113.7", "UA", day_two) != first          # a new day's salt
    assert {day for day, _ip, _ua in hasher._recent} == {"2026-03-02"}
