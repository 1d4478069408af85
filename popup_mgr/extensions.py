"""Flask extensions, created once and bound to the app in create_app()."""
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf import CSRFProtect

csrf = CSRFProtect()
login_manager = LoginManager()
# No default limits: public endpoints serve many real visitors behind one IP. Limits are set
# per route where they protect something (login).
limiter = Limiter(key_func=get_remote_address, default_limits=[])
