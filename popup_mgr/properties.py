"""Properties (the sites that embed the popup): listing, validation and audited updates.

Codes are fixed (they are in publishers' embed snippets); everything else is editable.
"""
import json
import re

from flask import current_app, has_app_context

from popup_mgr import audit, signals, theme, timeutil
from popup_mgr import db as database
from popup_mgr.bandit import MODES as ROTATIONS
from popup_mgr.urls import url_problem

FIELDS = ("name", "domain", "popup_enabled", "active", "popup_placement", "popup_frequency",
          "delay_ms", "theme", "rotation", "max_offers")
# The Properties API's fields, in the contract's order (`code` is fixed; the rest is FIELDS).
API_FIELDS = ("code", "name", "domain", "active", "popup_enabled", "popup_placement",
              "popup_frequency", "delay_ms", "theme", "rotation", "max_offers")
PLACEMENTS = ("thankyou", "exit-intent", "timed")
FREQUENCIES = ("session", "daily", "always")
MAX_DELAY_MS = 600_000
MAX_OFFERS = 20             # a carousel longer than this is never paged through to the end
_HOST = re.compile(r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                   r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?::\d{1,5})?")


class PropertyInvalid(ValueError):
    def __init__(self, errors):
        super().__init__("invalid property: " + ", ".join(sorted(errors)))
        self.errors = errors


class PropertyNotFound(LookupError):
    pass


def _public(row):
    prop = dict(row)
    prop["popup_enabled"] = bool(row["popup_enabled"])
    prop["active"] = bool(row["active"])
    prop["theme_values"] = theme.merged_theme(row["theme"])
    return prop


def list_properties(db):
    return [_public(row) for row in db.execute(
        "/* properties.list_properties */ SELECT * FROM properties ORDER BY id")]


def codes(db):
    return [row["code"] for row in db.execute("/* properties.codes */ SELECT code FROM properties ORDER BY id")]


def get(db, code):
    row = db.execute("/* properties.get */ SELECT * FROM properties WHERE code = ?", (code,)).fetchone()
    return _public(row) if row else None


def api_json(prop):
    """A property (from get/list_properties) as the Properties API shows it."""
    return {field: prop["theme_values"] if field == "theme" else prop[field] for field in API_FIELDS}


def validate(data, code=None):
    """(clean, errors) for a property edit; data holds any subset of FIELDS (theme as a dict),
    and may repeat the property's own `code` (an API client sending back what it read)."""
    errors = {field: "Unknown field." for field in data if field not in FIELDS and field != "code"}
    if "code" in data and data["code"] != code:
        errors["code"] = "The code cannot change: it is in the site's embed snippet."
    clean = {}
    if "name" in data:
        name = data["name"].strip() if isinstance(data["name"], str) else ""
        if not name or len(name) > 100:
            errors["name"] = "Enter a name of 1-100 characters."
        clean["name"] = name
    if "domain" in data:
        hosts = (data["domain"] or "").replace(",", " ").split() if isinstance(data["domain"], str) else None
        bad = [host for host in hosts or [] if not _HOST.fullmatch(host)]
        if hosts is None or bad:
            errors["domain"] = "Enter host names separated by spaces (e.g. modefreefinds.com www.modefreefinds.com)."
        clean["domain"] = " ".join(host.lower() for host in hosts or [])
    for flag in ("popup_enabled", "active"):
        if flag in data:
            if not isinstance(data[flag], bool):
                errors[flag] = "Must be true or false."
            clean[flag] = bool(data[flag])
    for field, allowed in (("popup_placement", PLACEMENTS), ("popup_frequency", FREQUENCIES)):
        if field in data:
            if data[field] not in allowed:
                errors[field] = "Choose one of: " + ", ".join(allowed) + "."
            clean[field] = data[field]
    if "delay_ms" in data:
        delay = data["delay_ms"]
        if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= MAX_DELAY_MS:
            errors["delay_ms"] = f"Enter milliseconds from 0 to {MAX_DELAY_MS}."
        clean["delay_ms"] = delay
    if "rotation" in data:
        if data["rotation"] not in ROTATIONS:
            errors["rotation"] = "Choose one of: " + ", ".join(ROTATIONS) + "."
        clean["rotation"] = data["rotation"]
    if "max_offers" in data:
        most = data["max_offers"]
        if isinstance(most, bool) or not isinstance(most, int) or not 1 <= most <= MAX_OFFERS:
            errors["max_offers"] = f"Enter a whole number of offers from 1 to {MAX_OFFERS}."
        clean["max_offers"] = most
    if "theme" in data:
        theme_errors, clean["theme"] = _theme_problems(data["theme"])
        errors.update(theme_errors)
    return clean, errors


def _theme_problems(values):
    """(errors keyed theme_<key>, canonical JSON of the overrides)."""
    if not isinstance(values, dict):
        return {"theme": "Theme must be an object."}, "{}"
    unknown = sorted(key for key in values if key not in theme.DEFAULT_THEME)
    if unknown:
        return {"theme": "Unknown theme keys: " + ", ".join(map(str, unknown)) + "."}, "{}"
    values = {key: (value.strip() if isinstance(value, str) else value) for key, value in values.items()
              if key in theme.DEFAULT_THEME}
    errors = {f"theme_{key}": message for key, message in theme.theme_problems(values).items()}
    logo = values.get("logo_url") or ""
    if logo and url_problem(logo):
        errors["theme_logo_url"] = url_problem(logo)
    overrides = {key: value for key, value in values.items() if value != theme.DEFAULT_THEME[key]}
    return errors, json.dumps(overrides, sort_keys=True)


def from_form(form):
    """Property input from the admin form (a MultiDict)."""
    data = {
        "name": form.get("name", ""),
        "domain": form.get("domain", ""),
        "popup_enabled": form.get("popup_enabled") in ("1", "on"),
        "active": form.get("active") in ("1", "on"),
        "popup_placement": form.get("popup_placement", ""),
        "popup_frequency": form.get("popup_frequency", ""),
        "theme": {key: form.get(f"theme_{key}", "") for key in theme.DEFAULT_THEME},
    }
    if "delay_s" in form:
        data["delay_ms"] = seconds_to_ms(form.get("delay_s", ""))
    else:
        delay = form.get("delay_ms", "").strip()
        data["delay_ms"] = int(delay) if re.fullmatch(r"[0-9]{1,7}", delay) else delay
    if "rotation" in form:
        data["rotation"] = form.get("rotation")
    if "max_offers" in form:
        most = form.get("max_offers", "").strip()
        data["max_offers"] = int(most) if re.fullmatch(r"[0-9]{1,3}", most) else most
    return data


def seconds_to_ms(text):
    """'2.5' (seconds, as the Properties page asks for them) -> 2500; anything else is passed on
    for validate() to refuse. A comma is read as the decimal point ("1,5")."""
    value = (text or "").strip().replace(",", ".")
    match = re.fullmatch(r"([0-9]{1,4})(?:\.([0-9]{1,3}))?", value)
    if not match:
        return value
    return int(match.group(1)) * 1000 + int((match.group(2) or "").ljust(3, "0"))


def ms_to_seconds(delay_ms):
    """2500 -> '2.5', 1000 -> '1': the delay as the Properties page shows it."""
    whole, rest = divmod(int(delay_ms), 1000)
    return f"{whole}.{rest:03d}".rstrip("0").rstrip(".") if rest else str(whole)


def update(db, code, data, actor):
    """Apply an edit of the fields given; returns the property. A theme given in part keeps
    the property's other theme values. Raises PropertyNotFound, PropertyInvalid."""
    if isinstance(data, dict) and isinstance(data.get("theme"), dict):
        current = get(db, code)
        if current is not None:
            data = {**data, "theme": {**current["theme_values"], **data["theme"]}}
    if not isinstance(data, dict):
        raise PropertyInvalid({"_body": "Send a JSON object of property fields."})
    clean, errors = validate(data, code)
    if errors:
        raise PropertyInvalid(errors)
    with database.transaction(db):
        row = db.execute("/* properties.update */ SELECT * FROM properties WHERE code = ?", (code,)).fetchone()
        if row is None:
            raise PropertyNotFound(code)
        before = {field: (bool(row[field]) if field in ("popup_enabled", "active") else row[field])
                  for field in FIELDS}
        changes = audit.changes_between(before, clean)
        if changes:
            columns = {field: (int(clean[field]) if field in ("popup_enabled", "active") else clean[field])
                       for field in changes}
            columns["updated_at"] = timeutil.iso_now()
            # Column names come from FIELDS only, never from input.
            assignments = ", ".join(f"{column} = ?" for column in columns)
            db.execute(f"/* properties.update */ UPDATE properties SET {assignments} WHERE id = ?",
                       list(columns.values()) + [row["id"]])
            audit.record(db, actor, "property.update", "property", row["id"], changes)
    if changes and has_app_context():
        signals.notify_catalog_changed(current_app._get_current_object())
    return get(db, code)
