"""The HTTP layer: every blueprint and the plumbing around them. Routes parse the request, call
the domain modules and answer; no SQL here (tests/test_layers.py fails on a query in web/).

register(app) wires it all, explicitly and in order: HTTP helpers and security headers, the
blueprints, then the raw-WSGI front for the public hot paths (fastpath.py), which must see every
route registered before it is installed."""
from flask import request

from popup_mgr.extensions import limiter
from popup_mgr.web import (accounts, admin, alerts_pages, analytics, api_campaigns, api_properties, api_tune,
                           auth, beacons, fastpath, health, http, operations_pages, postback, public, security,
                           setup_pages, tune_pages)
from popup_mgr.web import api_experiments, experiments_pages

BLUEPRINTS = (health, auth, admin, api_campaigns, api_properties, public, setup_pages, analytics, beacons,
              postback, tune_pages, api_tune, operations_pages, alerts_pages, accounts, api_experiments,
              experiments_pages)


def register(app):
    http.register(app)
    security.register(app)
    for module in BLUEPRINTS:
        app.register_blueprint(module.bp)
    beacons.register_fast_paths(app)
    public.register_fast_paths(app)
    fastpath.install(app)


@limiter.request_filter
def _public_paths_are_not_limited():
    """The public endpoints carry no limits; skipping the limiter's per-request bookkeeping there
    saves a quarter of an offers request's time."""
    return http.is_public_path(request.path)
