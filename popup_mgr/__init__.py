"""popup_mgr: a self-hosted popup offer manager for Tune (HasOffers) CPL campaigns."""
from flask import Flask, request

from popup_mgr import config as settings
from popup_mgr import db as database
from popup_mgr import fastpath, security, web
from popup_mgr.extensions import csrf, limiter, login_manager

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def create_app(test_config=None):
    """Build the app: configuration, database, extensions and blueprints.

    Nothing happens at import time; migrations run here, so a start-up upgrades the database.
    """
    app = Flask(__name__, instance_path=str(settings.INSTANCE_DIR))
    app.config.from_mapping(settings.from_environment())
    if test_config:
        app.config.from_mapping(test_config)
    settings.check(app.config)
    # CSRF is checked in one place below, so that bearer-token API calls and public beacons
    # (which carry no cookies) are not asked for a token.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False

    database.migrate(app.config["DATABASE"])
    database.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    # "basic": a changed IP or user agent marks the session non-fresh instead of ending it
    # (Mike moves between networks on his phone).
    login_manager.session_protection = "basic"
    web.register(app)
    security.register(app)
    app.before_request(_protect_from_csrf)
    _register_blueprints(app)
    # The public hot paths (beacons, /c/, /api/offers) registered by the blueprints above are
    # answered by a raw-WSGI front: Flask's per-request machinery costs several times their work.
    fastpath.install(app)
    from popup_mgr import cli
    cli.register(app)
    return app


def _protect_from_csrf():
    if request.method not in MUTATING_METHODS or web.is_public_path(request.path):
        return
    from popup_mgr.auth import bearer_token
    if bearer_token() is not None:
        return
    csrf.protect()


def _register_blueprints(app):
    from popup_mgr import admin, analytics, api, auth, embed, health, offers, track
    app.register_blueprint(health.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(api.bp)
    offers.init_app(app)
    app.register_blueprint(embed.bp)
    app.register_blueprint(analytics.bp)
    app.register_blueprint(track.bp)
