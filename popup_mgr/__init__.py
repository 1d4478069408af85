"""popup_mgr: a self-hosted popup offer manager for Tune (HasOffers) CPL campaigns."""
from flask import Flask

from popup_mgr import catalog, cli, operations, rotation, web
from popup_mgr import config as settings
from popup_mgr import db as database
from popup_mgr.extensions import csrf, limiter, login_manager
from popup_mgr.ingest import state as ingest


def create_app(test_config=None):
    """Build the app: configuration, database, extensions, the ingest path, the catalog, the web
    layer and the commands. Nothing happens at import time; migrations run here, so a start-up
    upgrades the database."""
    app = Flask(__name__, instance_path=str(settings.INSTANCE_DIR))
    app.config.from_mapping(settings.from_environment())
    if test_config:
        app.config.from_mapping(test_config)
    settings.check(app.config)

    database.migrate(app.config["DATABASE"])
    database.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    # "basic": a changed IP or user agent marks the session non-fresh instead of ending it
    # (Mike moves between networks on his phone).
    login_manager.session_protection = "basic"
    ingest.init_app(app)
    catalog.init_app(app)
    rotation.init_app(app)
    web.register(app)
    operations.init_app(app)
    cli.register(app)
    return app
