"""The Alerts page over HTTP: login, CSRF, incidents open and past, image checks, the settings in
force, and the test e-mail reaching a real SMTP server (aiosmtpd on 127.0.0.1) without the SMTP
password ever reaching the page."""
import re
import urllib.parse

import pytest

from tests.helpers import add_campaign, csrf_token
from tests.mail_support import Credentials, Inbox, free_port, start_server
from popup_mgr import alert_status, alerts, image_check

PATH = alerts.ALERTS_PATH
TEST_EMAIL = f"{PATH}/test-email"
USER, PASSWORD = "alerts@mode.example", "Zq7-secret/p@ss word"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def mail_on(app, inbox):
    app.config.update(SMTP_URL=f"smtp://127.0.0.1:{inbox.port}?from=alerts@mode.example",
                      ALERT_TO="mike@example.com")


@pytest.fixture
def guarded_inbox(app):
    """An SMTP server that wants USER and PASSWORD; the app's URL carries them percent-encoded."""
    inbox = Inbox()
    controller = start_server(inbox, authenticator=Credentials(USER, PASSWORD), auth_required=True,
                              auth_require_tls=False)
    inbox.port = controller.port
    app.config.update(SMTP_URL=smtp_url(PASSWORD, controller.port), ALERT_TO="mike@example.com")
    yield inbox
    controller.stop()


def smtp_url(password, port):
    return f"smtp://{urllib.parse.quote(USER, safe='')}:{urllib.parse.quote(password, safe='')}@127.0.0.1:{port}"


def post_test_email(client, headers=None, with_token=True):
    data = {"csrf_token": csrf_token(client, PATH)} if with_token else {}
    return client.post(TEST_EMAIL, data=data, headers=headers or {})


def audit_rows(db):
    return [dict(r) for r in db.execute("SELECT actor, action, entity, changes FROM audit_log"
                                        " WHERE action = 'alerts.test_email' ORDER BY id")]


def text_of(html):
    """The page's words, tags removed and entities left as they are."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- access --------------------------------------------------------------------------------------

def test_the_page_needs_a_login(client):
    answer = client.get(PATH)
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
    # htmx gets a 401 with the login page to move to, not a login form swapped into the panel.
    answer = client.get(PATH, headers={**HTMX, "HX-Current-URL": f"http://popup.test{PATH}"})
    assert answer.status_code == 401 and answer.headers["HX-Redirect"].startswith("/login")


def test_the_test_email_needs_a_login(client, inbox, mail_on):
    token = csrf_token(client, "/login")
    answer = client.post(TEST_EMAIL, data={"csrf_token": token})
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
    assert inbox.messages == []


def test_the_test_email_needs_the_csrf_token(admin_client, db, inbox, mail_on):
    answer = post_test_email(admin_client, with_token=False)
    assert answer.status_code == 400
    answer = admin_client.post(TEST_EMAIL, data={"csrf_token": "forged"})
    assert answer.status_code == 400
    assert inbox.messages == [] and audit_rows(db) == []


def test_a_get_never_sends(admin_client, inbox, mail_on):
    assert admin_client.get(TEST_EMAIL).status_code == 405
    assert inbox.messages == []


def test_every_admin_page_links_to_alerts(admin_client):
    assert f'href="{PATH}"' in admin_client.get("/admin/campaigns").get_data(as_text=True)


# --- the test e-mail -----------------------------------------------------------------------------

def test_the_test_email_reaches_the_server_and_is_audited(admin_client, db, inbox, mail_on):
    answer = post_test_email(admin_client, headers=HTMX)
    assert answer.status_code == 200 and "HX-Request" in answer.headers["Vary"]
    html = answer.get_data(as_text=True)
    # htmx gets the mail panel alone, which replaces itself.
    assert html.lstrip().startswith('<section id="mail-panel"') and "<html" not in html
    assert "Sent to mike@example.com." in html and 'role="status"' in html
    [received] = inbox.messages
    assert received["message"]["Subject"] == "[popup_mgr] Test e-mail"
    assert (received["from"], received["to"]) == ("alerts@mode.example", ["mike@example.com"])
    assert f"http://popup.test{PATH}" in received["message"].get_content()
    [row] = audit_rows(db)
    assert (row["actor"], row["entity"]) == ("mike", "alerts")
    assert '"recipients": [null, "mike@example.com"]' in row["changes"] and "Sent to" in row["changes"]


def test_a_plain_form_post_answers_the_whole_page(admin_client, inbox, mail_on):
    html = post_test_email(admin_client).get_data(as_text=True)
    assert "<html" in html and "Open incidents" in html and "Sent to mike@example.com." in html
    assert len(inbox.messages) == 1


def test_a_server_that_does_not_answer_is_explained(admin_client, app, db):
    port = free_port()     # nothing listens there
    app.config.update(SMTP_URL=f"smtp://127.0.0.1:{port}?timeout=2", ALERT_TO="mike@example.com")
    html = post_test_email(admin_client, headers=HTMX).get_data(as_text=True)
    assert f"Not sent: cannot talk to 127.0.0.1:{port} (plain):" in html and 'role="alert"' in html
    [row] = audit_rows(db)
    assert f"Not sent: cannot talk to 127.0.0.1:{port}" in row["changes"]


def test_without_mail_the_page_says_so_and_nothing_is_sent(admin_client, db):
    html = admin_client.get(PATH).get_data(as_text=True)
    assert "E-mail is off: set POPUP_SMTP_URL and POPUP_ALERT_TO." in html
    html = post_test_email(admin_client, headers=HTMX).get_data(as_text=True)
    assert "Not sent: e-mail is not configured: set POPUP_SMTP_URL." in html
    assert len(audit_rows(db)) == 1


# --- the SMTP password ----------------------------------------------------------------------------

def assert_no_password(html):
    for form in (PASSWORD, urllib.parse.quote(PASSWORD, safe=""), urllib.parse.quote(PASSWORD), "Zq7"):
        assert form not in html


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_the_smtp_password_never_reaches_a_page(admin_client, app, db, guarded_inbox):
    page = admin_client.get(PATH).get_data(as_text=True)
    assert_no_password(page)
    assert "smtp://alerts%40mode.example:••••••@127.0.0.1:" in page
    sent = post_test_email(admin_client).get_data(as_text=True)
    assert_no_password(sent)
    # The server took the login: the password was used, only never shown.
    [received] = guarded_inbox.messages
    assert received["login"] == USER.encode()
    assert "Sent to mike@example.com." in sent

    app.config["SMTP_URL"] = smtp_url(PASSWORD + "-wrong", guarded_inbox.port)
    refused = post_test_email(admin_client).get_data(as_text=True)
    assert "refused the user name or password" in refused
    assert_no_password(refused)
    assert_no_password(admin_client.get("/admin/audit").get_data(as_text=True))
    assert_no_password(str(audit_rows(db)))


def test_an_unreadable_smtp_url_is_not_shown(admin_client, app):
    app.config.update(SMTP_URL="smtp://bob:Zq7/secret@127.0.0.1:25", ALERT_TO="mike@example.com")
    html = admin_client.get(PATH).get_data(as_text=True)
    assert "E-mail is off: POPUP_SMTP_URL is not a valid URL." in html and "(set, not shown)" in html
    assert "Zq7" not in html and "secret@" not in html


# --- incidents, image checks, settings ---------------------------------------------------------------

def fire(rule, subject, summary):
    return alerts.Finding(rule, subject, alerts.FIRING, summary, f"figures behind {summary}")


def test_open_incidents_first_then_past_ones_by_page(admin_client, db):
    per_page = alert_status.PAST_PER_PAGE
    for n in range(per_page + 1):
        at = f"2026-11-{1 + n // 24:02d}T{n % 24:02d}:00:00Z"
        alerts.apply(db, {"backup_failed": [fire("backup_failed", "backup", f"backup failed #{n}")]}, at)
        alerts.apply(db, {"backup_failed": [alerts.Finding("backup_failed", "backup", alerts.CLEAR,
                                                           details="a backup worked")]}, at.replace(":00:00Z", ":45:00Z"))
    alerts.apply(db, {"tune_sync_failing": [fire("tune_sync_failing", "tune", "Tune sync failed 3 times")]},
                 "2026-11-28T10:00:00Z")

    html = admin_client.get(PATH).get_data(as_text=True)
    open_part, past_part = html.split('id="past"')
    assert re.findall(r'incident-summary">([^<]+)<', open_part) == ["Tune sync failed 3 times"]
    assert 'data-count="1"' in open_part and "Open since" in open_part
    past = re.findall(r'incident-summary">([^<]+)<', past_part)
    # Newest first, one page, and a link to the older ones.
    assert past == [f"backup failed #{n}" for n in range(per_page, 0, -1)]
    assert "Cleared: a backup worked" in past_part and "after 45 min" in past_part
    assert f'href="{PATH}?page=2#past"' in past_part and "Newer" not in past_part

    second = admin_client.get(f"{PATH}?page=2").get_data(as_text=True).split('id="past"')[1]
    assert re.findall(r'incident-summary">([^<]+)<', second) == ["backup failed #0"]
    assert f'href="{PATH}?page=1#past"' in second and "Older" not in second


def test_no_incident_says_so(admin_client):
    html = admin_client.get(PATH).get_data(as_text=True)
    assert "No open incident" in html and 'data-count="0"' in html and "None yet." in html


def test_image_checks_are_listed_per_campaign(admin_client, db):
    broken = add_campaign(db, name="Walmart $500", image_url="https://cdn.example/walmart.png")
    fine = add_campaign(db, name="Sweeps", image_url="https://cdn.example/sweeps.png")
    for at in ("2026-11-28T19:00:00Z", "2026-11-28T20:00:00Z"):
        image_check.store_results(db, {
            broken: image_check.Result("https://cdn.example/walmart.png", False, 404, "text/html", 0, 40, "HTTP 404"),
            fine: image_check.Result("https://cdn.example/sweeps.png", True, 200, "image/png", 48_213, 85)}, at)
    html = admin_client.get(PATH).get_data(as_text=True)
    rows = re.findall(r'<tr class="image-check image-([a-z-]+)" data-campaign="(\d+)">', html)
    assert rows == [("failing", str(broken)), ("loads", str(fine))]
    words = text_of(html)
    assert "Fails: HTTP 404 (2 checks in a row). Last loaded: never." in words
    assert "Loads: HTTP 200, image/png, 48.2 KB in 85 ms." in words


def test_the_settings_in_force_are_shown(admin_client, app, monkeypatch):
    monkeypatch.setenv("POPUP_ALERT_SILENT_HOURS", "6")
    monkeypatch.setenv("POPUP_ALERT_CTR_RATIO", "low")
    app.config.update(SMTP_URL="smtps://relay.example", ALERT_TO="mike@example.com")
    html = admin_client.get(PATH).get_data(as_text=True)
    for name in alert_status.alert_settings.SETTINGS:
        assert f'data-variable="POPUP_{name}"' in html
    silent = html.split('data-variable="POPUP_ALERT_SILENT_HOURS"')[1].split("</tr>")[0]
    assert "6.0" in silent and "changed" in silent
    ratio = html.split('data-variable="POPUP_ALERT_CTR_RATIO"')[1].split("</tr>")[0]
    assert "POPUP_ALERT_CTR_RATIO must be a float, not &#39;low&#39;" in ratio
    assert "Alerts and the daily digest are mailed to mike@example.com through relay.example:465 (tls)." in html
