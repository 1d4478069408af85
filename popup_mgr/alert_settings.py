"""Settings of the e-mail alerts, the daily digest and the image checks, with their defaults.

Each setting NAME is read from the app's configuration key NAME when present (so tests and
`create_app(test_config)` can set it), else from the environment variable POPUP_<NAME>, else
its default below. A value that cannot be read as the default's type is an error, never
silently replaced: a threshold typed wrong should not turn an alert off.
"""
import os


# name: (default, meaning). The type of the default is the type of the setting.
SETTINGS = {
    # Mail.
    "SMTP_URL": ("", "SMTP server, e.g. smtp+starttls://user:password@smtp.example.com:587 "
                     "(smtp://, smtp+starttls:// or smtps://); empty = no e-mail is sent"),
    "ALERT_TO": ("", "alert and digest recipients, separated by commas"),
    # A property that had traffic goes silent.
    "ALERT_SILENT_HOURS": (3.0, "hours without a human impression before a property counts as silent"),
    "ALERT_SILENT_MIN_EXPECTED": (10.0, "the same hours of the previous 7 days must have averaged at least "
                                        "this many impressions, else silence can be chance"),
    # A campaign's CTR collapses against its own 7-day baseline.
    "ALERT_CTR_MIN_IMPRESSIONS": (500, "impressions today before today's CTR is judged"),
    "ALERT_CTR_RATIO": (0.30, "alert when today's CTR is below this fraction of the 7-day CTR"),
    "ALERT_CTR_CLEAR_RATIO": (0.50, "clear when today's CTR is back above this fraction of the 7-day CTR"),
    "ALERT_CTR_BASELINE_MIN_CLICKS": (50, "clicks in the previous 7 days for a usable baseline"),
    "ALERT_CTR_MAX_P": (0.001, "chance that a normal campaign shows so few clicks (Poisson), below "
                               "which the drop is not bad luck"),
    # Postbacks stop while clicks go on.
    "ALERT_POSTBACK_MIN_CLICKS": (200, "human clicks since the last postback before it counts as stopped"),
    "ALERT_POSTBACK_FACTOR": (3.0, "and those clicks must be more than this many times the usual "
                                   "clicks per conversion"),
    "ALERT_POSTBACK_BASELINE_DAYS": (30, "days of history for the usual clicks per conversion"),
    "ALERT_POSTBACK_BASELINE_MIN_CONVERSIONS": (10, "conversions in those days for a usable baseline"),
    # Tune sync and image checks.
    "ALERT_TUNE_FAILURES": (3, "consecutive failed Tune syncs before an alert"),
    "ALERT_IMAGE_FAILURES": (2, "consecutive failed checks of a campaign's image before an alert"),
    "ALERT_MAIL_RETRY_HOURS": (24.0, "an alert mail that could not be sent is retried this long"),
    "IMAGE_CHECK_TIMEOUT_S": (10.0, "seconds allowed for one image check, redirects included"),
    "IMAGE_CHECK_MAX_BYTES": (5_000_000, "images larger than this fail the check (the popup must stay light)"),
    "IMAGE_CHECK_MAX_REDIRECTS": (5, "redirects followed per image"),
}


class SettingError(ValueError):
    """A setting's value cannot be used."""


def env_name(name):
    return f"POPUP_{name}"


def get(config, name, environ=os.environ):
    """The value of setting `name` (a key of SETTINGS), typed like its default."""
    default, _meaning = SETTINGS[name]
    if config is not None and name in config and config[name] is not None:
        raw = config[name]
    elif env_name(name) in environ:
        raw = environ[env_name(name)]
    else:
        return default
    return _typed(name, raw, type(default))


def _typed(name, raw, kind):
    if kind is str:
        return str(raw).strip()
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise SettingError(f"{env_name(name)} must be a {kind.__name__}, not {raw!r}") from None
    if value < 0:
        raise SettingError(f"{env_name(name)} must not be negative")
    return value


def all_settings(config, environ=os.environ):
    """{name: value} of every setting (for `doctor` and the Alerts page)."""
    return {name: get(config, name, environ) for name in SETTINGS}


def problems(config, environ=os.environ):
    """[message] for every setting whose value cannot be used; [] when all are fine."""
    found = []
    for name in SETTINGS:
        try:
            get(config, name, environ)
        except SettingError as exc:
            found.append(str(exc))
    return found
