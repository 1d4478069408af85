"""Blueprint "alerts": the Alerts page (alerts.ALERTS_PATH, the link in every alert mail) —
incidents open and past, the latest image checks, the mail settings in force, and a test e-mail.

Reads go through alert_status (no SQL here); the test e-mail is a POST with the session's CSRF
token (checked for every admin write in security.py), answered with the mail panel for htmx or
the whole page for a plain form.
"""
from flask import Blueprint, current_app, request

from popup_mgr import alert_status, alerts
from popup_mgr.db import get_db
from popup_mgr.web.admin import require_login
from popup_mgr.web.auth import current_actor
from popup_mgr.web.http import render_page_or_fragment

bp = Blueprint("alerts", __name__)
# Logged-out htmx requests get a redirect htmx can follow to the login page, as on the admin pages.
bp.before_request(require_login)

PAGE = "alerts/alerts.html"
MAIL_PANEL = "alerts/_mail_panel.html"


@bp.get(alerts.ALERTS_PATH, endpoint="index")
def alerts_page():
    return _render()


@bp.post(f"{alerts.ALERTS_PATH}/test-email", endpoint="test_email")
def send_test_email():
    sent, sentence = alert_status.send_test_email(get_db(), current_app.config, current_actor())
    return _render(test_result={"sent": sent, "sentence": sentence})


def _render(**extra):
    db = get_db()
    page_number = max(request.args.get("page", 1, type=int), 1)
    past, has_more = alert_status.past_incidents(db, page_number)
    return render_page_or_fragment(
        PAGE, MAIL_PANEL, open_incidents=alert_status.open_incidents(db), past_incidents=past,
        page_number=page_number, has_more=has_more, image_checks=alert_status.image_checks(
            db, current_app.config["BUSINESS_TZ"]),
        mail=alert_status.mail_status(current_app.config),
        settings=alert_status.settings_in_force(current_app.config), **extra)
