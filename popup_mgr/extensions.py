"""Flask extensions, created once and bound to the app in create_app()."""
from flask import current_app, request
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_wtf import CSRFProtect

from popup_mgr import netaddr

csrf = CSRFProtect()
login_manager = LoginManager()


def client_address():
    """The client's IP, seen through a trusted reverse proxy (POPUP_TRUSTED_PROXIES) when one is
    configured; otherwise the socket's peer, so a forged X-Forwarded-For changes nothing."""
    return netaddr.client_ip(current_app.config, request.remote_addr, request.headers.get("X-Forwarded-For"))


# No default limits: public endpoints serve many real visitors behind one IP. Limits are set
# per route where they protect something (login).
limiter = Limiter(key_func=client_address, default_limits=[])
