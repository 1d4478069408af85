"""The popup's controls stay where they are while the visitor pages through offers of different
shapes, a click meant for a control never closes the popup, and the close button stays visible
over a dark image. Chromium at a desktop size and at a touch phone size."""
import base64

import pytest
from playwright.sync_api import expect

from tests.browser.popup_support import (  # noqa: F401  (fixtures)
    DESKTOP_UA, DIALOG, page_html, popup_app, publisher, route_offer_assets, snippet)

DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {"viewport": {"width": 375, "height": 667}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}
LONG_TITLE = "A much longer offer title that wraps onto a second and maybe a third line on a phone"
LONG_TEXT = ("Everything you need to know about this offer, told at length so that it needs many "
             "lines: free delivery, no commitment, cancel any time, and a gift with your first box. ") * 4
# Offers of every shape a property can hold: with and without image, short and long texts, a
# long call to action, an image that fails to load.
SHAPES = [
    {"title": "Short", "tagline": "", "description": "Tiny.", "image_url": ""},
    {"title": "Boxed: " + LONG_TITLE, "tagline": "Limited time, while stocks last, in every state",
     "description": LONG_TEXT, "image_url": "https://img.example/a.gif"},
    {"title": "Image, little text", "tagline": "", "description": "", "image_url": "https://img.example/b.gif"},
    {"title": "Plain: " + LONG_TITLE, "description": LONG_TEXT, "image_url": "",
     "cta_text": "Claim your free sample box of snacks now"},
    {"title": "Broken image", "image_url": "https://img.example/missing.gif"},
]
CONTROLS = {"close": "button[aria-label=Close]", "prev": "button[aria-label='Previous offer']",
            "next": "button[aria-label='Next offer']", "cta": "a.cta"}
BLACK_SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="9"><rect width="16" height="9"/></svg>'


def add_offers(popup_app, shapes):
    for n, shape in enumerate(shapes):
        popup_app.campaign(301 + n, **{"display_title" if k == "title" else k: v for k, v in shape.items()})
    popup_app.property("mff", delay_ms=0)


def answer(content_type, body):
    return lambda route: route.fulfill(status=200, content_type=content_type, body=body)


def open_popup(chromium, publisher, popup_app, device, images=None):
    """A visitor context on the given device with the popup open; images maps URL globs to
    (content type, body) for offer images (the rest answer a 1 px GIF, missing.gif a 404)."""
    context = chromium.new_context(user_agent=DESKTOP_UA, **device)
    route_offer_assets(context)
    context.route("https://img.example/missing.gif", lambda route: route.fulfill(status=404, body=""))
    for glob, (content_type, body) in (images or {}).items():
        context.route(glob, answer(content_type, body))
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(publisher.add(page_html(snippet(popup_app.url, property="mff"))))
    expect(page.locator(DIALOG)).to_be_visible()
    page.wait_for_timeout(200)          # offer images answered (or failed) and laid out
    return context, page


def boxes(page, count):
    """Bounding boxes of every control: close, arrows, CTA, and the counter or each dot."""
    dialog = page.locator(DIALOG)
    found = {name: dialog.locator(selector).bounding_box() for name, selector in CONTROLS.items()}
    if count > 3:
        found["counter"] = dialog.locator(".cnt").bounding_box()
    else:
        for k in range(count):
            found[f"dot{k + 1}"] = dialog.locator(f"button[aria-label='Offer {k + 1} of {count}']").bounding_box()
    return found


def largest_move(first, later):
    return max(abs(first[name][key] - box[name][key])
               for box in later for name in first for key in ("x", "y", "width", "height"))


def press(page, device, point):
    if device is PHONE:
        page.touchscreen.tap(*point)
    else:
        page.mouse.click(*point)


def centre(box):
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


@pytest.mark.parametrize("device", [DESKTOP, PHONE], ids=["desktop-1280x800", "phone-375x667"])
@pytest.mark.parametrize("shapes", [SHAPES, SHAPES[:3]], ids=["5-offers-counter", "3-offers-dots"])
def test_controls_stay_put_across_offers_of_different_shapes(chromium, publisher, popup_app, device, shapes):
    add_offers(popup_app, shapes)
    context, page = open_popup(chromium, publisher, popup_app, device)
    try:
        title = page.locator(f"{DIALOG} h2")
        first = boxes(page, len(shapes))
        next_at = centre(first["next"])
        seen, later = [title.text_content()], []
        # Pressing where "Next" was at first, as a visitor does without looking: every press must
        # land on Next (the title changes) and nothing may move, around the whole carousel.
        for _ in range(len(shapes)):
            press(page, device, next_at)
            page.wait_for_timeout(60)        # a late image load or error would move things now
            assert page.locator("mode-popup").count() == 1, f"press {len(seen)} closed the popup"
            seen.append(title.text_content())
            later.append(boxes(page, len(shapes)))
        assert len(set(seen[:-1])) == len(shapes) and seen[-1] == seen[0]
        moved = largest_move(first, later)
        print(f"largest control move: {moved:.1f} px")
        assert moved <= 1, (first, later)
        dialog = page.locator(DIALOG).bounding_box()
        viewport = device["viewport"]
        assert dialog["y"] >= 0 and dialog["y"] + dialog["height"] <= viewport["height"]
        assert page.errors == []
    finally:
        context.close()


@pytest.mark.parametrize("device", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_double_click_on_next_never_closes(chromium, publisher, popup_app, device):
    add_offers(popup_app, SHAPES)
    context, page = open_popup(chromium, publisher, popup_app, device)
    try:
        title = page.locator(f"{DIALOG} h2")
        x, y = centre(page.locator(DIALOG).locator(CONTROLS["next"]).bounding_box())
        before = title.text_content()
        for _ in range(3):
            if device is PHONE:
                page.touchscreen.tap(x, y)
                page.touchscreen.tap(x, y)
            else:
                page.mouse.dblclick(x, y)
            page.wait_for_timeout(100)
            expect(page.locator(DIALOG)).to_be_visible()
        assert title.text_content() != before       # six presses over five offers: it paged
    finally:
        context.close()


def test_overlay_click_right_after_a_control_does_not_close(chromium, publisher, popup_app):
    """Even if a control were to move, the click that follows a control's click within a short
    time does not close; an overlay click on its own still does."""
    add_offers(popup_app, SHAPES[:2])
    context, page = open_popup(chromium, publisher, popup_app, DESKTOP)
    try:
        dialog = page.locator(DIALOG)
        page.mouse.click(*centre(dialog.locator(CONTROLS["next"]).bounding_box()))
        page.mouse.click(5, 5)                          # the overlay, at once
        page.wait_for_timeout(100)
        expect(dialog).to_be_visible()
        # A press that starts inside the dialog and is released over the overlay is no close.
        box = dialog.bounding_box()
        page.wait_for_timeout(1000)
        page.mouse.move(box["x"] + 30, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(5, 5, steps=4)
        page.mouse.up()
        page.wait_for_timeout(100)
        expect(dialog).to_be_visible()
        page.wait_for_timeout(1000)
        page.mouse.click(5, 5)                          # later, on its own: closes
        expect(page.locator("mode-popup")).to_have_count(0)
    finally:
        context.close()


def test_long_texts_are_clamped_to_four_lines(chromium, publisher, popup_app):
    """Tune descriptions can run to paragraphs: the popup shows four lines of each text, so one
    long offer does not make every offer's popup tall."""
    add_offers(popup_app, [{"title": LONG_TITLE * 2, "tagline": LONG_TITLE * 2, "description": LONG_TEXT}])
    context, page = open_popup(chromium, publisher, popup_app, PHONE)
    try:
        for selector in ("h2", ".tg", ".ds"):
            lines, cut = page.locator(f"{DIALOG} {selector}").evaluate(
                "e => [e.clientHeight / parseFloat(getComputedStyle(e).lineHeight), e.scrollHeight > e.clientHeight]")
            assert abs(lines - 4) < 0.05 and cut, (selector, lines)   # whole pixels vs fractional line heights
        # The whole text is still there for screen readers.
        assert page.locator(f"{DIALOG} .ds").text_content() == LONG_TEXT
    finally:
        context.close()


# --- the close button over a dark image ---------------------------------------------------------

def luminance(rgb):
    def channel(c):
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b):
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def rgba(css):
    parts = css[css.index("(") + 1:-1].split(",")
    return [float(p) for p in parts] + ([1.0] if len(parts) == 3 else [])


SCREENSHOT_EXTREMES = """async (png) => {
    const img = new Image();
    img.src = 'data:image/png;base64,' + png;
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = img.width; canvas.height = img.height;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const px = ctx.getImageData(0, 0, img.width, img.height).data;
    let dark = null, light = null, lum = (r, g, b) => 0.2126 * r + 0.7152 * g + 0.0722 * b;
    for (let i = 0; i < px.length; i += 4) {
        const p = [px[i], px[i + 1], px[i + 2]];
        if (!dark || lum(...p) < lum(...dark)) dark = p;
        if (!light || lum(...p) > lum(...light)) light = p;
    }
    return [dark, light];
}"""


@pytest.mark.parametrize("theme", [{}, {"background": "#101820", "text": "#f5f5f5"}], ids=["mode", "dark-theme"])
def test_close_button_is_clearly_visible_over_a_dark_image(chromium, publisher, popup_app, theme):
    popup_app.campaign(301, image_url="https://img.example/dark.svg")
    popup_app.property("mff", delay_ms=0, theme=theme)
    context, page = open_popup(chromium, publisher, popup_app, DESKTOP,
                               images={"https://img.example/dark.svg": ("image/svg+xml", BLACK_SVG)})
    try:
        dialog = page.locator(DIALOG)
        close = dialog.locator(CONTROLS["close"])
        image = dialog.locator(".fig").bounding_box()
        box = close.bounding_box()
        # The case in question: the button sits over the image's corner.
        assert box["y"] < image["y"] + image["height"] and box["y"] + box["height"] > image["y"]
        assert box["x"] < image["x"] + image["width"] and box["x"] + box["width"] > image["x"]
        # It is on top where it is pressed, on an opaque backing whose contrast with the × is
        # at least WCAG's 4.5:1 for text, whatever the image behind it.
        at_centre = page.evaluate("([x, y]) => document.querySelector('mode-popup').shadowRoot"
                                  ".elementFromPoint(x, y).getAttribute('aria-label')", list(centre(box)))
        assert at_centre == "Close"
        colour, backing = close.evaluate("b => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]")
        assert rgba(backing)[3] == 1, backing
        assert contrast(rgba(colour), rgba(backing)) >= 4.5, (colour, backing)
        # What is really painted: the darkest and lightest pixels in the button's box differ
        # by at least 4.5:1 (a bare × over the black image would be dark on black).
        png = base64.b64encode(page.screenshot(clip=box)).decode()
        dark, light = page.evaluate(SCREENSHOT_EXTREMES, png)
        assert contrast(light, dark) >= 4.5, (dark, light)
    finally:
        context.close()
