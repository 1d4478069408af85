"""In Chromium, a property's theme preview takes the colours as they are picked, under the
admin's strict CSP (no console error)."""

CTA_BACKGROUND = "(code) => getComputedStyle(document.querySelector(`#property-${code} .pp-cta`)).backgroundColor"


def test_the_preview_follows_the_colour_inputs(admin_page, live_server):
    errors = []
    admin_page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    admin_page.goto(f"{live_server.url}/admin/properties")
    admin_page.wait_for_load_state("load")
    assert admin_page.evaluate(CTA_BACKGROUND, "mff") == "rgb(214, 36, 110)"     # the Mode theme's primary
    admin_page.locator('#property-mff input[name="theme_primary"]').fill("#112233")
    admin_page.wait_for_function(f"() => ({CTA_BACKGROUND})('mff') === 'rgb(17, 34, 51)'")
    assert admin_page.evaluate(CTA_BACKGROUND, "mmm") == "rgb(214, 36, 110)"     # the other cards keep theirs
    assert errors == []
