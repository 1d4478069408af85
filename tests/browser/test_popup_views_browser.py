"""Popup views in Chromium: the first offer seen in each popup display is sent with "view": 1 and
the others with "view": 0, so the server counts one view per display however many offers the
visitor pages through."""
from playwright.sync_api import expect

from tests.browser.popup_support import (  # noqa: F401  (fixtures)
    DIALOG, page_html, popup_app, publisher, snippet, visitor)


def test_each_display_is_one_view(visitor, publisher, popup_app):
    for tune_id in (101, 102, 103):
        popup_app.campaign(tune_id, title=f"Offer {tune_id}")
    popup_app.property("mff", delay_ms=0)
    visitor.goto(publisher.add(page_html(snippet(popup_app.url, property="mff", debug=True))))
    dialog = visitor.locator(DIALOG)
    expect(dialog).to_be_visible()
    for _ in range(3):                      # pages through every offer and back to the first
        visitor.keyboard.press("ArrowRight")
    first = popup_app.recorder.wait_for_impressions(3)
    assert [i["view"] for i in first] == [1, 0, 0]
    visitor.keyboard.press("Escape")
    expect(dialog).to_have_count(0)

    visitor.evaluate("ModePopup.show()")    # a second display in the same page: a new view
    expect(dialog).to_be_visible()
    visitor.keyboard.press("ArrowRight")
    both = popup_app.recorder.wait_for_impressions(5)
    assert [i["view"] for i in both] == [1, 0, 0, 1, 0]

    assert popup_app.ledger_impressions(5) == 5
    db = popup_app.server.db()
    try:
        row = db.execute("SELECT sum(impressions), sum(views) FROM daily_stats").fetchone()
    finally:
        db.close()
    assert tuple(row) == (5, 2)
