"""In-process signals between modules that must not import each other.

catalog_changed is sent (with the app as sender) after any write to campaigns, their property
targeting or properties, so that in-memory snapshots (offers, click targets) are rebuilt on the
next request.
"""
from blinker import Namespace

_signals = Namespace()
catalog_changed = _signals.signal("catalog-changed")


def notify_catalog_changed(app):
    catalog_changed.send(app)
