def test_health_in_chromium(page, live_server):
    page.goto(live_server.url + "/api/health")
    assert '"status":"ok"' in page.content().replace(" ", "")
