"""WSGI entry point for running popup_mgr under another server: `waitress-serve wsgi:app`.

`popup-mgr serve` is the usual way; it uses the same app with tuned waitress settings.
"""
from popup_mgr import create_app

app = create_app()
