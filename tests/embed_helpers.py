"""Rows for embed tests, written straight to the app's database file."""
import json

from popup_mgr import timeutil


def add_campaign(db, tune_id, title="Free sample box", priority=5, active=1, start_at=None, end_at=None,
                 properties=(), **fields):
    now = timeutil.iso_now()
    row = {"tune_campaign_id": tune_id, "name": f"campaign {tune_id}", "display_title": title,
           "tagline": "Limited time", "description": "Get it delivered free.", "cta_text": "Claim now",
           "image_url": "https://img.example/offer.jpg", "click_url": f"https://tune.example/aff_c?offer_id={tune_id}",
           "impression_pixel_url": f"https://tune.example/aff_i?offer_id={tune_id}", "active": active,
           "priority": priority, "start_at": start_at, "end_at": end_at, "created_at": now, "updated_at": now}
    row.update(fields)
    cur = db.execute(f"INSERT INTO campaigns ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                     tuple(row.values()))
    for code in properties:
        db.execute("INSERT INTO campaign_properties (campaign_id, property_id)"
                   " SELECT ?, id FROM properties WHERE code = ?", (cur.lastrowid, code))
    return cur.lastrowid


def set_property(db, code, **fields):
    if "theme" in fields and isinstance(fields["theme"], dict):
        fields["theme"] = json.dumps(fields["theme"])
    sets = ", ".join(f"{name} = ?" for name in fields)
    db.execute(f"UPDATE properties SET {sets} WHERE code = ?", (*fields.values(), code))
