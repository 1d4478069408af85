"""The audit log: who changed what, when, field by field.

Rows are written by the domain modules inside the same transaction as the change they describe,
so a change and its audit row are committed (or rolled back) together.
"""
import json

from popup_mgr import timeutil

ENTITIES = ("campaign", "property")
PER_PAGE = 50


def changes_between(old, new):
    """{"field": [old, new]} for every key of new whose value differs from old's."""
    return {key: [old.get(key), value] for key, value in new.items() if old.get(key) != value}


def record(db, actor, action, entity, entity_id, changes):
    """Write one audit row. Call inside the transaction that makes the change."""
    db.execute(
        "/* audit.record */ INSERT INTO audit_log (at, actor, action, entity, entity_id, changes)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (timeutil.iso_now(), actor, action, entity, entity_id,
         json.dumps(changes, sort_keys=True, ensure_ascii=False)),
    )


def entity_names(db):
    """Entities to filter by: campaigns and properties, plus any other module's that wrote rows."""
    found = [row["entity"] for row in db.execute(
        "/* audit.entity_names */ SELECT DISTINCT entity FROM audit_log ORDER BY entity")]
    return list(ENTITIES) + [name for name in found if name not in ENTITIES]


def entries(db, entity=None, entity_id=None, page=1, per_page=PER_PAGE):
    """(rows, has_more): one page of audit rows, newest first, optionally for one entity."""
    where, params = [], []
    if entity:
        where.append("entity = ?")
        params.append(entity)
    if entity_id is not None:
        where.append("entity_id = ?")
        params.append(entity_id)
    sql = ("/* audit.entries */ SELECT id, at, actor, action, entity, entity_id, changes"
           " FROM audit_log" + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY id DESC LIMIT ? OFFSET ?")
    offset = (max(page, 1) - 1) * per_page
    rows = db.execute(sql, params + [per_page + 1, offset]).fetchall()
    result = [_entry(row) for row in rows[:per_page]]
    return result, len(rows) > per_page


def _entry(row):
    entry = dict(row)
    try:
        entry["changes"] = json.loads(row["changes"] or "{}")
    except ValueError:
        entry["changes"] = {}
    return entry
