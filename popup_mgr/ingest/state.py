"""The ingest path's per-app state: the group-commit writer and the visitor hasher, created once
by init_app() (from create_app) and stopped at teardown and exit."""
import atexit
import sqlite3

from popup_mgr import timeutil
from popup_mgr.ingest import conversions, privacy
from popup_mgr.ingest.writer import GroupCommitWriter

EXTENSION_KEY = "ingest"


class IngestState:
    def __init__(self, config):
        self.business_tz = config["BUSINESS_TZ"]
        self.writer = GroupCommitWriter(config["DATABASE"])
        # Every refused write of the ingest path (beacons, clicks, postbacks), for /api/health.
        self.failures = self.writer.failures
        self.hasher = privacy.VisitorHasher(config["DATABASE"])


def init_app(app):
    """Create the app's ingest state, make sure a postback secret exists, and delete expired
    visitor salts (also done whenever a new day's salt is made)."""
    ingest = app.extensions[EXTENSION_KEY] = IngestState(app.config)
    atexit.register(ingest.writer.stop)
    conversions.ensure_postback_secret(app.config)
    try:
        privacy.purge_expired_salts(app.config["DATABASE"], timeutil.now_ms())
    except sqlite3.Error:
        pass    # busy at start-up: the next new day's salt purges them


def of(app):
    return app.extensions[EXTENSION_KEY]


def stop(app):
    """Commit what is queued and stop the app's writer thread."""
    ingest = app.extensions.get(EXTENSION_KEY)
    if ingest is not None:
        ingest.writer.stop()
