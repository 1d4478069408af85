"""The Tune client against the stand-in network: envelopes, paging, retries and the key's secrecy."""
import logging

import pytest

from popup_mgr import tune_client
from popup_mgr.tune_client import TuneClient, TuneError
from tests.tune_standin import API_KEY, INVALID_KEY_MESSAGE, NETWORK_ID, RATE_LIMIT_MESSAGE


def our_log_text(caplog):
    """Every log line but the stand-in server's own access log (that is the network's log, and
    it does see the key, as Tune's servers do)."""
    return "\n".join(record.getMessage() for record in caplog.records if record.name != "werkzeug")


def make_client(tune, sleeps, api_key=API_KEY, **options):
    options = {"timeout_s": 2.0, "retries": 3, "backoff_s": 1.5, "sleep": sleeps.append} | options
    return TuneClient(tune.url, NETWORK_ID, api_key, **options)


def test_encode_params_follows_tunes_array_and_map_syntax():
    assert tune_client.encode_params({
        "fields": ["Stat.date", "Stat.offer_id"],
        "filters": {"Stat.date": {"conditional": "BETWEEN", "values": ["2026-11-01", "2026-11-02"]}},
        "sort": {"Stat.date": "asc"}, "limit": 10, "totals": True, "skipped": None,
    }) == [("fields[]", "Stat.date"), ("fields[]", "Stat.offer_id"),
           ("filters[Stat.date][conditional]", "BETWEEN"),
           ("filters[Stat.date][values][]", "2026-11-01"), ("filters[Stat.date][values][]", "2026-11-02"),
           ("sort[Stat.date]", "asc"), ("limit", "10"), ("totals", "1")]


def test_approved_offers_follow_every_page_with_links_and_thumbnails(tune, sleeps):
    for offer_id in range(1001, 1008):
        tune.add_offer(offer_id, link=offer_id != 1003)
    tune.max_limit = 3          # 7 offers -> pages of 3, 3 and 1

    offers = make_client(tune, sleeps).approved_offers()

    assert [o["Offer"]["id"] for o in offers] == [str(i) for i in range(1001, 1008)]
    assert [args["page"] for method, args in tune.calls] == [["1"], ["2"], ["3"]]
    assert tune.calls[0][1]["contain[]"] == ["TrackingLink", "Thumbnail"]
    assert offers[0]["TrackingLink"]["click_url"].endswith("aff_c?offer_id=1001&aff_id=2002")
    assert offers[2]["TrackingLink"] == []       # no link: the sync asks generateTrackingLink
    assert offers[0]["Thumbnail"]["url"] == "https://media.go2cloud.org/thumbs/1001.png"


def test_generate_tracking_link(tune, sleeps):
    link = make_client(tune, sleeps).tracking_link("1003")
    assert link["click_url"] == "https://modenet.go2cloud.org/aff_c?offer_id=1003&aff_id=2002"
    assert tune.calls[0][1]["offer_id"] == ["1003"]


def test_reports_send_the_date_filter_and_read_rows(tune, sleeps):
    tune.add_stat("2026-11-20", 1001, clicks=12, conversions=2, payout="9.00")
    tune.add_stat("2026-11-22", 1001, clicks=5)
    tune.add_conversion("tx-1", 1001, "2026-11-20 13:04:05", click_id="abc")
    client = make_client(tune, sleeps)

    stats = client.stats("2026-11-20", "2026-11-21")
    conversions = client.conversions("2026-11-20 00:00:00", "2026-11-20 23:59:59")

    assert [row["Stat"]["clicks"] for row in stats] == ["12"]
    assert tune.calls[0][1]["filters[Stat.date][values][]"] == ["2026-11-20", "2026-11-21"]
    assert tune.calls[0][1]["groups[]"] == ["Stat.date", "Stat.offer_id"]
    assert conversions[0]["Stat"]["ad_id"] == "tx-1"
    assert conversions[0]["ConversionsMobile"]["affiliate_click_id"] == "abc"


def test_status_minus_one_with_http_200_is_an_error_with_the_networks_message(tune, sleeps):
    tune.fail_next("error", detail="Offer 1234 is not available")
    with pytest.raises(TuneError) as caught:
        make_client(tune, sleeps).tracking_link("1234")
    assert "Offer 1234 is not available" in str(caught.value)
    assert sleeps == []                          # not retried: only the rate limit and timeouts are


def test_rate_limit_is_retried_with_growing_backoff(tune, sleeps):
    tune.add_offer(1001)
    tune.fail_next("rate_limit", times=2)
    offers = make_client(tune, sleeps).approved_offers()
    assert [o["Offer"]["id"] for o in offers] == ["1001"]
    assert sleeps == [1.5, 3.0]


def test_rate_limit_gives_up_after_the_bounded_retries(tune, sleeps):
    tune.fail_next("rate_limit", times=10)
    with pytest.raises(TuneError) as caught:
        make_client(tune, sleeps, retries=2).approved_offers()
    assert RATE_LIMIT_MESSAGE in caught.value.message
    assert len(tune.calls) == 3 and sleeps == [1.5, 3.0]


def test_a_timeout_is_retried(tune, sleeps):
    tune.add_offer(1001)
    tune.fail_next("slow", detail=0.6)
    offers = make_client(tune, sleeps, timeout_s=0.3).approved_offers()
    assert len(offers) == 1 and sleeps == [1.5]


def test_an_unreachable_network_fails_after_retries_without_the_key(sleeps):
    client = TuneClient("http://127.0.0.1:9/Apiv3/json", NETWORK_ID, API_KEY, timeout_s=1,
                        retries=1, backoff_s=0, sleep=sleeps.append)
    with pytest.raises(TuneError) as caught:
        client.approved_offers()
    assert "could not reach http://127.0.0.1:9/Apiv3/json" in str(caught.value)
    assert API_KEY not in str(caught.value) and len(sleeps) == 1
    assert caught.value.__context__ is None and caught.value.__cause__ is None   # no httpx request along


def test_an_answer_that_is_not_an_envelope_is_an_error(httpserver, sleeps):
    httpserver.expect_request("/Apiv3/json").respond_with_data("<html>gateway</html>", status=200)
    client = TuneClient(httpserver.url_for("/Apiv3/json"), NETWORK_ID, API_KEY, sleep=sleeps.append)
    with pytest.raises(TuneError, match="not a Tune API envelope"):
        client.approved_offers()


def test_wrong_key_is_refused_and_the_key_appears_nowhere(tune, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    wrong_key = "wr0ngk3y-aaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    client = make_client(tune, sleeps, api_key=wrong_key)

    with pytest.raises(TuneError) as caught:
        client.approved_offers()
    ok, message = client.test_connection()

    assert INVALID_KEY_MESSAGE in str(caught.value)
    assert not ok and INVALID_KEY_MESSAGE in message
    # The stand-in echoes the request, key included, as Tune does: none of it may surface.
    for text in (str(caught.value), repr(caught.value), repr(client), message, our_log_text(caplog)):
        assert wrong_key not in text
    assert tune.calls[0][1]["api_key"] == [wrong_key]     # it was sent, though


def test_key_is_absent_from_http_library_logs_and_retry_warnings(tune, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    tune.add_offer(1001)
    tune.fail_next("rate_limit")
    make_client(tune, sleeps).approved_offers()
    logged = our_log_text(caplog)
    assert "HTTP Request" in logged and "api_key=***" in logged   # httpx did log the URL
    assert "retry 1 of 3" in logged
    assert API_KEY not in logged


def test_a_key_echoed_in_the_networks_message_is_redacted(tune, sleeps):
    tune.fail_next("error", detail=f"key {API_KEY} is suspended")
    with pytest.raises(TuneError) as caught:
        make_client(tune, sleeps).approved_offers()
    assert str(caught.value).endswith("key *** is suspended")


def test_test_connection_reports_in_words(tune, sleeps):
    tune.add_offer(1001)
    tune.add_offer(1002)
    ok, message = make_client(tune, sleeps).test_connection()
    assert ok and message == f"Connected to network {NETWORK_ID}. 2 approved offers."
