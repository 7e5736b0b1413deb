"""Schema versions. Version 1 is ``schema.sql``; later versions append SQL here, never edit old ones."""

from __future__ import annotations

from importlib import resources

MIGRATIONS: dict[int, str] = {
    1: resources.files("audit.store").joinpath("schema.sql").read_text(),
}
CURRENT_VERSION = max(MIGRATIONS)


def migrate(con) -> int:
    """Apply every migration newer than the database's version; returns the resulting version."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)")
    have = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
    if have > CURRENT_VERSION:
        from audit.errors import StoreError

        raise StoreError(f"database schema version {have} is newer than this faceaudit ({CURRENT_VERSION}); upgrade faceaudit")
    for version in range(have + 1, CURRENT_VERSION + 1):
        con.execute("BEGIN TRANSACTION")
        con.execute(MIGRATIONS[version])
        con.execute("INSERT INTO schema_version VALUES (?, now())", [version])
        con.execute("COMMIT")
    return CURRENT_VERSION
