"""init-db gives the four properties their real names (and the known domains), also in databases
made before them, without touching what Mike changed."""
import sqlite3

from popup_mgr import db as database

EXPECTED = {"mff": ("ModeFreeFinds", "modefreefinds.com"), "mmm": ("ModeMarketMunchies", "modemarketmunchies.com"),
            "mcad": ("Mode Coupons & Deals", ""), "mmd": ("Mode Money Daily", "")}


def _names(path):
    conn = sqlite3.connect(path)
    try:
        return {code: (name, domain) for code, name, domain in conn.execute("SELECT code, name, domain FROM properties")}
    finally:
        conn.close()


def test_a_new_database_has_the_real_names_and_domains(tmp_path):
    path = str(tmp_path / "new.db")
    database.migrate(path)
    assert _names(path) == EXPECTED


def test_an_older_database_gets_them_and_keeps_edits(tmp_path):
    path = str(tmp_path / "old.db")
    database.migrate(path)
    conn = sqlite3.connect(path)
    with conn:
        # As init-db left it before: the code as the name, no domains; then Mike renamed mmd.
        conn.execute("UPDATE properties SET name = code, domain = ''")
        conn.execute("UPDATE properties SET name = 'Money Daily by Mode', domain = 'mmd.example.org' WHERE code = 'mmd'")
        conn.execute("UPDATE properties SET domain = 'www.modefreefinds.com' WHERE code = 'mff'")
    conn.close()
    database.migrate(path)
    database.migrate(path)                          # idempotent
    assert _names(path) == {**EXPECTED, "mff": ("ModeFreeFinds", "www.modefreefinds.com"),
                            "mmd": ("Money Daily by Mode", "mmd.example.org")}
