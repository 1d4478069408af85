"""Campaigns: validation, storage and the audit trail of every change.

One `validate()` serves the admin form and the JSON API, so both accept and reject exactly the
same values. Values are stored verbatim (templates and the embed escape them on output); only
http(s) URLs are accepted. Every write records an audit row in the same transaction and, after
the commit, tells the in-memory offer snapshots that the catalog changed.

Public (API) form of a campaign: the schema's names, `payout` as a decimal string, `active` as a
boolean and `properties` as a list of property codes ([] = all properties).
"""
import html
import re
import sqlite3
from urllib.parse import parse_qs, urlsplit

from flask import current_app, has_app_context

from popup_mgr import audit, money, signals, timeutil
from popup_mgr import db as database
from popup_mgr.urls import url_problem

# Writable fields, in the order the API shows them.
FIELDS = ("tune_campaign_id", "aff_id", "name", "display_title", "tagline", "description",
          "cta_text", "image_url", "click_url", "impression_pixel_url", "active", "priority",
          "notes", "payout", "subid_param", "properties", "start_at", "end_at")
# Shown by the API and ignored on input, so a fetched campaign can be sent back as it is.
READ_ONLY = ("id", "performance_score", "created_at", "updated_at", "network_hold")
REQUIRED = ("tune_campaign_id", "name", "display_title", "click_url")
DEFAULTS = {"aff_id": None, "tagline": "", "description": "", "cta_text": "View Offer",
            "image_url": "", "impression_pixel_url": "", "active": True, "priority": 5,
            "notes": "", "payout": "0.00", "subid_param": "aff_click_id", "properties": [],
            "start_at": None, "end_at": None}
MIN_PRIORITY, MAX_PRIORITY = 1, 10
MAX_TUNE_ID = 2 ** 53 - 1          # the largest integer JavaScript clients can carry exactly
_DIGITS = re.compile(r"[0-9]{1,16}")
_SUBID = re.compile(r"[A-Za-z0-9_]{1,40}")
_COLUMNS = ("tune_campaign_id", "aff_id", "name", "display_title", "tagline", "description",
            "cta_text", "image_url", "click_url", "impression_pixel_url", "active", "priority",
            "notes", "payout_cents", "subid_param", "start_at", "end_at")


class CampaignInvalid(ValueError):
    """Input that cannot be stored; .errors maps each field to a message for the user."""

    def __init__(self, errors):
        super().__init__("invalid campaign: " + ", ".join(sorted(errors)))
        self.errors = errors


class CampaignNotFound(LookupError):
    pass


# --- validation --------------------------------------------------------------------------------

def _whole_number(low, high, optional=False):
    def check(value):
        if value is None and optional:
            return None, None
        # bool is an int in Python; true/false is never a valid id or priority.
        if isinstance(value, bool) or not isinstance(value, int):
            return None, "Must be a whole number."
        if not low <= value <= high:
            return None, f"Must be between {low} and {high}."
        return value, None
    return check


_CONTROL_SINGLE_LINE = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_MULTI_LINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")   # allows \t \n \r


def _text(max_length, required=False, strip=True):
    """Single-line text (stripped, no control characters) or, with strip=False, multi-line text."""
    control = _CONTROL_SINGLE_LINE if strip else _CONTROL_MULTI_LINE

    def check(value):
        if not isinstance(value, str):
            return None, "Must be text."
        if control.search(value.strip() if strip else value):
            return None, "Must not contain line breaks or control characters." if strip \
                else "Must not contain control characters."
        if strip:
            value = value.strip()
        if required and not value.strip():
            return None, "Required."
        if len(value) > max_length:
            return None, f"At most {max_length} characters."
        return value, None
    return check


def _url(required=False):
    def check(value):
        if not isinstance(value, str):
            return None, "Must be a URL (text)."
        value = value.strip()
        if not value:
            return (None, "Required.") if required else ("", None)
        problem = url_problem(value)
        return (None, problem) if problem else (value, None)
    return check


def _boolean(value):
    if not isinstance(value, bool):
        return None, "Must be true or false."
    return value, None


def _payout(value):
    if not isinstance(value, str):
        return None, 'Must be a decimal string such as "12.34".'
    try:
        money.parse_cents(value)
    except money.MoneyError as exc:
        return None, f"Payout {exc}."
    return money.format_cents(money.parse_cents(value)), None


def _subid_param(value):
    if not isinstance(value, str) or not _SUBID.fullmatch(value.strip()):
        return None, "Use 1-40 letters, digits or underscores (e.g. aff_click_id)."
    return value.strip(), None


def _property_codes(value):
    if not isinstance(value, list) or not all(isinstance(code, str) for code in value):
        return None, "Must be a list of property codes ([] = all properties)."
    unique = []
    for code in value:
        if code not in unique:
            unique.append(code)
    return unique, None


def _timestamp(value):
    if value is None or value == "":
        return None, None
    if not isinstance(value, str):
        return None, "Must be an ISO-8601 date and time, e.g. 2026-12-01T00:00:00Z."
    try:
        return timeutil.iso_utc(timeutil.parse_iso_utc(value)), None
    except ValueError:
        return None, "Must be an ISO-8601 date and time, e.g. 2026-12-01T00:00:00Z."


_CHECKS = {
    "tune_campaign_id": _whole_number(1, MAX_TUNE_ID),
    "aff_id": _whole_number(1, MAX_TUNE_ID, optional=True),
    "name": _text(200, required=True),
    "display_title": _text(120, required=True),
    "tagline": _text(200),
    "description": _text(2000, strip=False),
    "cta_text": _text(40, required=True),
    "image_url": _url(),
    "click_url": _url(required=True),
    "impression_pixel_url": _url(),
    "active": _boolean,
    "priority": _whole_number(MIN_PRIORITY, MAX_PRIORITY),
    "notes": _text(5000, strip=False),
    "payout": _payout,
    "subid_param": _subid_param,
    "properties": _property_codes,
    "start_at": _timestamp,
    "end_at": _timestamp,
}


def validate(data, partial=False):
    """(clean, errors) for campaign input in public form.

    partial=True checks only the fields given (a PUT); otherwise required fields must be there
    and missing optional ones get their defaults. Unknown fields are errors; read-only ones are
    ignored. Checks that need the database (unique Tune id, known property codes) happen in
    create() and update().
    """
    if not isinstance(data, dict):
        return {}, {"_body": "Send a JSON object of campaign fields."}
    errors = {field: "Unknown field." for field in data if field not in FIELDS and field not in READ_ONLY}
    clean = {}
    for field in FIELDS:
        if field not in data:
            if partial:
                continue
            if field in REQUIRED:
                errors[field] = "Required."
                continue
            clean[field] = DEFAULTS[field]
            continue
        value, problem = _CHECKS[field](data[field])
        if problem:
            errors[field] = problem
        else:
            clean[field] = value
    errors.update(_schedule_problems(clean))
    return clean, errors


def _schedule_problems(campaign):
    start, end = campaign.get("start_at"), campaign.get("end_at")
    if start and end and end <= start:
        return {"end_at": "The end must be after the start."}
    return {}


# --- Tune paste helpers ---------------------------------------------------------------------------

def parse_tune_link(text):
    """{"tune_campaign_id", "aff_id", "click_url"} from a pasted Tune tracking link, else None.

    Tune links look like https://network.go2cloud.org/aff_c?offer_id=123&aff_id=456&...
    """
    url = (text or "").strip()
    if url_problem(url):
        return None
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    offer_ids, aff_ids = query.get("offer_id", []), query.get("aff_id", [])
    offer_id = _positive_int(offer_ids[0]) if offer_ids else None
    if offer_id is None:
        return None
    aff_id = _positive_int(aff_ids[0]) if aff_ids else None
    return {"tune_campaign_id": offer_id, "aff_id": aff_id, "click_url": url}


def _positive_int(text):
    """int for 1-16 ASCII digits above zero, else None (str.isdigit() also accepts "²")."""
    return int(text) if _DIGITS.fullmatch(text) and int(text) > 0 else None


# src itself, not data-src or the like ("\b" alone would match after the hyphen).
_IMG_SRC = re.compile(r"""<img\b[^>]*?(?<![\w-])src\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))""", re.I | re.S)


def parse_pixel_html(text):
    """The URL from Tune's impression pixel HTML (<img src="..." ...>), unescaped; else None.

    A bare URL is returned as it is, so the field accepts either form.
    """
    text = (text or "").strip()
    match = _IMG_SRC.search(text)
    if match:
        url = html.unescape(next(group for group in match.groups() if group is not None)).strip()
    elif not text.startswith("<"):
        url = text
    else:
        return None
    return url if url and url_problem(url) is None else None


def from_form(form, tz=None):
    """Public-form input from the admin's HTML form (a MultiDict), with the paste helpers applied.
    tz: the business zone the form's start and end times are entered in (stored as UTC).

    Whole numbers arrive as text: digits become ints, anything else is passed on so validate()
    rejects it with its usual message. Only the fields present in the form are included.
    """
    data = {}
    for field in FIELDS:
        if field == "properties":
            if "properties_present" in form:   # no box ticked must still mean "all properties"
                data[field] = form.getlist("properties")
            continue
        if field == "active":
            if "active_present" in form:
                data[field] = form.get("active") in ("1", "on", "true")
            continue
        if field not in form:
            continue
        value = form.get(field, "")
        if field in ("tune_campaign_id", "aff_id", "priority"):
            value = value.strip()
            if value == "" and field != "aff_id":
                continue                       # reported as "Required." on create
            value = int(value) if _DIGITS.fullmatch(value) else (value or None)
        elif field in ("start_at", "end_at"):
            value = value.strip() or None
            if value and tz:
                value = timeutil.local_input_to_utc(value, tz)
        elif field == "payout":
            value = pasted_amount(value)
        data[field] = value
    return _apply_paste_helpers(data, form.get("tune_link", ""))


_THOUSANDS = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")
_DECIMAL_COMMA = re.compile(r"[0-9]+,[0-9]{1,2}")


def pasted_amount(text):
    """A payout as people paste it, made into the plain decimal validate() takes: "$4.50",
    "4.50 USD" and "$1,250.00" (thousands separators) are read as dollars; "4,50" (a comma before
    one or two digits, the European way) as 4.50. "1,250" stays ambiguous and is refused by
    validate() with its usual message. Only for the admin form: the API takes plain decimals."""
    value = text.strip()
    value = re.sub(r"(?i)\s*(?:usd|us\$)$", "", value)
    value = value.removeprefix("$").strip()
    if _THOUSANDS.fullmatch(value) and "." in value:
        return value.replace(",", "")
    if _DECIMAL_COMMA.fullmatch(value):
        return value.replace(",", ".")
    return value


def payout_warning(campaign):
    """A warning for a campaign saved with a payout of 0, else None. Revenue itself comes from each
    postback's payout; the campaign's payout is what EPC estimates, the Tune comparison and the
    revenue alerts expect, so a 0 there is almost always a forgotten field."""
    if campaign.get("payout") in ("0.00", "0", 0):
        return ("Payout is $0.00. Revenue still comes from the payout each postback reports, but "
                "estimates and the Tune comparison will expect nothing from this campaign: "
                "enter the payout per lead from Tune.")
    return None


def _apply_paste_helpers(data, tune_link=""):
    """A pasted Tune link (in the quick-fill box or as the click URL) fills the ids and the click
    URL where they are empty; pasted pixel HTML becomes its URL."""
    click_url = data.get("click_url") if isinstance(data.get("click_url"), str) else ""
    link = parse_tune_link(tune_link) or parse_tune_link(click_url)
    if link:
        for field in ("tune_campaign_id", "aff_id", "click_url"):
            if data.get(field) in (None, "") and link[field] is not None:
                data[field] = link[field]
    pixel = data.get("impression_pixel_url")
    if isinstance(pixel, str) and pixel.strip().startswith("<"):
        data["impression_pixel_url"] = parse_pixel_html(pixel) or pixel
    return data


# --- reading ----------------------------------------------------------------------------------

def _public(row, codes):
    campaign = {"id": row["id"]}
    for field in FIELDS:
        if field == "payout":
            campaign[field] = money.format_cents(row["payout_cents"])
        elif field == "active":
            campaign[field] = bool(row["active"])
        elif field == "properties":
            campaign[field] = codes
        else:
            campaign[field] = row[field]
    campaign["performance_score"] = row["performance_score"]
    campaign["created_at"] = row["created_at"]
    campaign["updated_at"] = row["updated_at"]
    # Set and lifted by the Tune sync only (null, or why the network stops it being served).
    campaign["network_hold"] = row["network_hold"]
    return campaign


def _codes_by_campaign(db, campaign_ids=None):
    sql = ("/* campaigns.codes_by_campaign */ SELECT cp.campaign_id, p.code FROM campaign_properties cp"
           " JOIN properties p ON p.id = cp.property_id")
    params = ()
    if campaign_ids is not None:
        sql += f" WHERE cp.campaign_id IN ({','.join('?' * len(campaign_ids))})"
        params = tuple(campaign_ids)
    codes = {}
    for row in db.execute(sql + " ORDER BY p.id", params):
        codes.setdefault(row["campaign_id"], []).append(row["code"])
    return codes


def get(db, campaign_id):
    """The campaign in public form, or None."""
    row = db.execute("/* campaigns.get */ SELECT * FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
    if row is None:
        return None
    return _public(row, _codes_by_campaign(db, [campaign_id]).get(campaign_id, []))


STATUSES = ("active", "paused")


def any_campaign(db):
    """True once at least one campaign exists."""
    return db.execute("/* campaigns.any_campaign */ SELECT 1 FROM campaigns LIMIT 1").fetchone() is not None


def list_campaigns(db, text=None, status=None, property_code=None):
    """Campaigns in public form, active first, then by priority (high first) and latest change.

    text matches name, display title or the Tune id; status is "active" or "paused";
    property_code keeps campaigns that run on that property (including "all properties" ones).
    """
    where, params = [], {}
    if text:
        where.append("(c.name LIKE :like ESCAPE '\\' OR c.display_title LIKE :like ESCAPE '\\'"
                     " OR CAST(c.tune_campaign_id AS TEXT) = :text OR CAST(c.id AS TEXT) = :text)")
        params["like"] = "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"
        params["text"] = text.strip()
    if status in STATUSES:
        where.append("c.active = :active")
        params["active"] = 1 if status == "active" else 0
    if property_code:
        where.append("(NOT EXISTS (SELECT 1 FROM campaign_properties cp WHERE cp.campaign_id = c.id)"
                     " OR EXISTS (SELECT 1 FROM campaign_properties cp JOIN properties p"
                     " ON p.id = cp.property_id WHERE cp.campaign_id = c.id AND p.code = :code))")
        params["code"] = property_code
    sql = ("/* campaigns.list_campaigns */ SELECT c.* FROM campaigns c"
           + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY c.active DESC, c.priority DESC, c.updated_at DESC, c.id DESC")
    rows = db.execute(sql, params).fetchall()
    codes = _codes_by_campaign(db)
    return [_public(row, codes.get(row["id"], [])) for row in rows]


# --- writing ----------------------------------------------------------------------------------

def create(db, data, actor):
    """Validate and store a new campaign; returns it in public form. Raises CampaignInvalid."""
    clean, errors = validate(data)
    now = timeutil.iso_now()
    with database.transaction(db):
        # The database's checks run even when the fields have errors, so that the admin sees
        # every problem (a taken Tune offer id too) in one round.
        property_ids = _check_against_database(db, clean, campaign_id=None, errors=errors)
        values = _column_values(clean)
        columns = list(values) + ["created_by", "created_at", "updated_at"]
        cur = _insert(db, columns, list(values.values()) + [actor, now, now])
        campaign_id = cur.lastrowid
        _set_properties(db, campaign_id, property_ids)
        created = get(db, campaign_id)
        audit.record(db, actor, "campaign.create", "campaign", campaign_id,
                     {field: [None, created[field]] for field in FIELDS})
    _notify()
    return created


def update(db, campaign_id, data, actor, action="campaign.update"):
    """Change the fields given; returns the campaign. Raises CampaignNotFound, CampaignInvalid."""
    clean, errors = validate(data, partial=True)
    with database.transaction(db):
        before = get(db, campaign_id)
        if before is None:
            raise CampaignNotFound(campaign_id)
        errors = {**_schedule_problems({**before, **clean}), **errors}
        property_ids = _check_against_database(db, clean, campaign_id, errors=errors)
        changes = audit.changes_between(before, clean)
        if changes:
            values = _column_values({field: clean[field] for field in changes})
            values.pop("properties", None)
            _update_columns(db, campaign_id, values)
            if "properties" in changes:
                _set_properties(db, campaign_id, property_ids)
            audit.record(db, actor, action, "campaign", campaign_id, changes)
        after = get(db, campaign_id)
    if changes:
        _notify()
    return after


def set_active(db, campaign_id, active, actor):
    """Start or pause a campaign (audited as campaign.toggle)."""
    return update(db, campaign_id, {"active": bool(active)}, actor, action="campaign.toggle")


def deactivate(db, campaign_id, actor):
    """What DELETE does: the campaign stops showing; its row and history are kept."""
    return update(db, campaign_id, {"active": False}, actor, action="campaign.delete")


def _check_against_database(db, clean, campaign_id, errors=None):
    """Property ids for clean["properties"] (None when not given); raises CampaignInvalid with
    `errors` (the field checks' problems) plus a taken Tune offer id or unknown property codes."""
    errors = dict(errors or {})
    if "tune_campaign_id" in clean:
        row = db.execute("/* campaigns.check_against_database */ SELECT id, name FROM campaigns"
                         " WHERE tune_campaign_id = ? AND id IS NOT ?",
                         (clean["tune_campaign_id"], campaign_id)).fetchone()
        if row:
            errors["tune_campaign_id"] = (f"Tune offer id {clean['tune_campaign_id']} is already used by"
                                          f" campaign #{row['id']} “{row['name']}”.")
    property_ids = None
    if "properties" in clean:
        known = {row["code"]: row["id"] for row in db.execute(
            "/* campaigns.check_against_database */ SELECT id, code FROM properties")}
        unknown = [code for code in clean["properties"] if code not in known]
        if unknown:
            errors["properties"] = "Unknown property code(s): " + ", ".join(unknown) + "."
        # Stored and compared in the properties' own order, so a reordered list is no change.
        clean["properties"] = sorted(set(clean["properties"]) & set(known), key=known.get)
        property_ids = [known[code] for code in clean["properties"]]
    if errors:
        raise CampaignInvalid(errors)
    return property_ids


def _column_values(clean):
    values = {}
    for field, value in clean.items():
        if field == "payout":
            values["payout_cents"] = money.parse_cents(value)
        elif field == "active":
            values["active"] = 1 if value else 0
        elif field != "properties":
            values[field] = value
    return values


def _check_columns(columns, allowed):
    """Column names are put into SQL text: only names from the hard-coded lists may pass (a real
    check, not an assert, which `python -O` would remove)."""
    unknown = set(columns) - set(allowed)
    if unknown:
        raise ValueError(f"not campaign columns: {sorted(unknown)}")


def _insert(db, columns, values):
    _check_columns(columns, _COLUMNS + ("created_by", "created_at", "updated_at"))
    try:
        return db.execute(f"/* campaigns.create */ INSERT INTO campaigns ({', '.join(columns)})"
                          f" VALUES ({', '.join('?' * len(columns))})", values)
    except sqlite3.IntegrityError as exc:   # the checks above run in this transaction; belt and braces
        raise CampaignInvalid({"_body": f"The campaign could not be stored ({exc})."}) from exc


def _update_columns(db, campaign_id, values):
    values = dict(values, updated_at=timeutil.iso_now())
    _check_columns(values, _COLUMNS + ("updated_at",))
    assignments = ", ".join(f"{column} = ?" for column in values)
    db.execute(f"/* campaigns.update */ UPDATE campaigns SET {assignments} WHERE id = ?",
               list(values.values()) + [campaign_id])


def _set_properties(db, campaign_id, property_ids):
    db.execute("/* campaigns.set_properties */ DELETE FROM campaign_properties WHERE campaign_id = ?",
               (campaign_id,))
    db.executemany("/* campaigns.set_properties */ INSERT INTO campaign_properties"
                   " (campaign_id, property_id) VALUES (?, ?)",
                   [(campaign_id, property_id) for property_id in property_ids or []])


def _notify():
    # After the commit: snapshots rebuilt now must see the change.
    if has_app_context():
        signals.notify_catalog_changed(current_app._get_current_object())
