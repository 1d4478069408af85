"""A stand-in for Tune's (HasOffers) Affiliate API v3 on a real HTTP server (pytest-httpserver).

It answers like the documented API (see the project's Tune notes): every answer is HTTP 200 with
the {"request", "response": {"status", "httpStatus", "data", "errors", "errorMessage"}} envelope,
errors are status -1, records are keyed by id with every value a string, paged methods honour
`limit`/`page` (capped at `max_limit`, so tests can force several pages), and the request's
parameters, api_key included, are echoed back in "request" as the real API does.

Each test shapes the network: offers (with or without a tracking link, with a thumbnail),
getStats rows, getConversions rows, and failures to inject (the rate-limit message, a slow
answer, any other error) for the next calls.
"""
import json
import threading
import time

from werkzeug.wrappers import Response

API_PATH = "/Apiv3/json"
NETWORK_ID = "modenet"
API_KEY = "k3y0123456789abcdef0123456789abcd"
AFFILIATE_ID = "2002"
RATE_LIMIT_MESSAGE = "API usage exceeded rate limit"
INVALID_KEY_MESSAGE = "Invalid api key"


class TuneStandin:
    def __init__(self, httpserver, network_id=NETWORK_ID, api_key=API_KEY):
        self.server = httpserver
        self.network_id = network_id
        self.api_key = api_key
        self.offers = {}                # offer id (str) -> record {"Offer", "TrackingLink", "Thumbnail"}
        self.stats_rows = []            # {"Stat": {...}, "Offer": {"name"}}
        self.conversion_rows = []       # {"Stat": {...}, "ConversionsMobile": {...}, "Goal": {...}}
        self.failures = []              # [(method or None, kind, detail)] consumed in order
        self.calls = []                 # (Method, {name: [values]}) of every request
        self.max_limit = 1000
        self._lock = threading.Lock()
        httpserver.expect_request(API_PATH).respond_with_handler(self._handle)

    @property
    def url(self):
        return self.server.url_for(API_PATH)

    def methods_called(self):
        return [method for method, _ in self.calls]

    # --- shaping the network ------------------------------------------------------------------------

    def add_offer(self, offer_id, name=None, *, payout="4.50", payout_type="cpa_flat", status="active",
                  expiration="2030-12-31 23:59:59", cap=0, description=None, link=True, thumbnail=True):
        offer_id = str(offer_id)
        host = "https://modenet.go2cloud.org"
        offer = {"id": offer_id, "name": name or f"Offer {offer_id} - US", "payout_type": payout_type,
                 "description": description if description is not None else
                 f"<p>Get a <b>free</b> quote for offer {offer_id}.</p>",
                 "default_payout": payout, "currency": None, "preview_url": f"{host}/preview/{offer_id}",
                 "status": status, "expiration_date": expiration, "conversion_cap": str(cap),
                 "require_approval": "1"}
        record = {"Offer": offer, "TrackingLink": [], "Thumbnail": []}
        if link:
            record["TrackingLink"] = self.link_for(offer_id)
        if thumbnail:
            record["Thumbnail"] = {"id": "77" + offer_id, "offer_id": offer_id,
                                   "url": f"https://media.go2cloud.org/thumbs/{offer_id}.png",
                                   "thumbnail": f"https://media.go2cloud.org/thumbs/{offer_id}_s.png"}
        self.offers[offer_id] = record
        return record

    @staticmethod
    def link_for(offer_id):
        host = "https://modenet.go2cloud.org"
        return {"offer_id": str(offer_id), "affiliate_id": AFFILIATE_ID,
                "click_url": f"{host}/aff_c?offer_id={offer_id}&aff_id={AFFILIATE_ID}",
                "impression_pixel": f'<img src="{host}/aff_i?offer_id={offer_id}&amp;aff_id={AFFILIATE_ID}"'
                                    ' width="0" height="0" style="position:absolute;visibility:hidden;" border="0" />'}

    def withdraw(self, offer_id):
        self.offers.pop(str(offer_id), None)

    def add_stat(self, date, offer_id, *, impressions=0, clicks=0, conversions=0, payout="0.00", name=None):
        self.stats_rows.append({"Stat": {"date": date, "offer_id": str(offer_id),
                                         "impressions": str(impressions), "clicks": str(clicks),
                                         "conversions": str(conversions), "payout": payout},
                                "Offer": {"name": name or f"Offer {offer_id} - US"}})

    def add_conversion(self, transaction_id, offer_id, datetime, *, payout="4.50", status="approved",
                       click_id=""):
        self.conversion_rows.append({
            "Stat": {"datetime": datetime, "offer_id": str(offer_id), "payout": payout,
                     "approved_payout": payout if status == "approved" else "0.00",
                     "conversion_status": status, "sale_amount": "0.00", "currency": "USD",
                     "session_ip": "203.0.113.9", "ad_id": transaction_id, "affiliate_info1": "mff"},
            "ConversionsMobile": {"affiliate_click_id": click_id},
            "Goal": {"name": "Lead"}})

    def fail_next(self, kind, method=None, detail=None, times=1):
        """Make the next `times` calls (of `method`, or any) fail: kind is "rate_limit",
        "slow" (answers after detail seconds) or "error" (status -1 with message detail)."""
        self.failures.extend([(method, kind, detail)] * times)

    # --- the HTTP side ------------------------------------------------------------------------------

    def _handle(self, request):
        args = request.args
        method = args.get("Method", "")
        with self._lock:
            self.calls.append((method, {key: args.getlist(key) for key in args}))
            failure = self._take_failure(method)
        echo = {key: (values if len(values) > 1 else values[0]) for key, values in args.lists()}
        if failure:
            _, kind, detail = failure
            if kind == "slow":
                time.sleep(detail)
            else:
                return self._error(echo, RATE_LIMIT_MESSAGE if kind == "rate_limit" else detail)
        if args.get("NetworkId") != self.network_id or args.get("api_key") != self.api_key:
            return self._error(echo, INVALID_KEY_MESSAGE)
        answer = {
            ("Affiliate_Offer", "findMyApprovedOffers"): self._approved_offers,
            ("Affiliate_Offer", "generateTrackingLink"): self._generate_tracking_link,
            ("Affiliate_Report", "getStats"): self._stats,
            ("Affiliate_Report", "getConversions"): self._conversions,
        }.get((args.get("Target"), method))
        if answer is None:
            return self._error(echo, f"Method {args.get('Target')}::{method} does not exist")
        return self._envelope(echo, 1, answer(args))

    def _take_failure(self, method):
        for index, (only, _, _) in enumerate(self.failures):
            if only is None or only == method:
                return self.failures.pop(index)
        return None

    def _error(self, echo, message):
        return self._envelope(echo, -1, None, errors=[{"err_code": 1, "err_msg": message}], message=message)

    @staticmethod
    def _envelope(echo, status, data, errors=(), message=None):
        body = {"request": echo, "response": {"status": status, "httpStatus": 200, "data": data,
                                              "errors": list(errors), "errorMessage": message}}
        return Response(json.dumps(body), status=200, content_type="application/json")

    def _page(self, args, items, keyed):
        limit = min(int(args.get("limit") or 50), self.max_limit)
        page = int(args.get("page") or 1)
        count = len(items)
        page_count = max(1, -(-count // limit))
        chosen = items[(page - 1) * limit: page * limit]
        data = {key: value for key, value in chosen} if keyed else chosen
        # PHP encodes an empty map as a list, and so does Tune.
        return {"page": str(page), "current": str(len(chosen)), "count": str(count),
                "pageCount": str(page_count), "data": data if data else []}

    def _approved_offers(self, args):
        contain = args.getlist("contain[]")
        items = []
        for offer_id in sorted(self.offers, key=int):
            record = self.offers[offer_id]
            items.append((offer_id, {"Offer": record["Offer"]} |
                          {model: record[model] for model in ("TrackingLink", "Thumbnail") if model in contain}))
        return self._page(args, items, keyed=True)

    def _generate_tracking_link(self, args):
        return self.link_for(args.get("offer_id"))

    def _stats(self, args):
        first, last = args.getlist("filters[Stat.date][values][]") or ("0000-00-00", "9999-99-99")
        rows = [row for row in self.stats_rows if first <= row["Stat"]["date"] <= last]
        page = self._page(args, rows, keyed=False)
        page["totals"] = {"Stat": {field: str(sum(int(row["Stat"][field]) for row in rows))
                                   for field in ("impressions", "clicks", "conversions")}}
        return page

    def _conversions(self, args):
        first, last = args.getlist("filters[Stat.datetime][values][]") or ("0", "9")
        rows = [row for row in self.conversion_rows if first <= row["Stat"]["datetime"] <= last]
        return self._page(args, rows, keyed=False)
