"""Schema versions. Version 1 is ``schema.sql``; later versions append SQL here, never edit old ones."""

from __future__ import annotations

from importlib import resources

MIGRATIONS: dict[int, str] = {
    1: resources.files("audit.store").joinpath("schema.sql").read_text(),
    # 2: findings say which pack file judged them (its SHA-256, so two packs that share an id can be told
    # apart) and which probe and metric the rule read, so evidence exports and the traceability table
    # need no pack file to explain a finding.
    2: """
ALTER TABLE findings ADD COLUMN pack_hash VARCHAR DEFAULT '';
ALTER TABLE findings ADD COLUMN probe VARCHAR DEFAULT '';
ALTER TABLE findings ADD COLUMN metric VARCHAR DEFAULT '';
""",
    # 3: findings say which faceaudit judged them (its version), so a statement signed by one faceaudit never
    # vouches for verdicts an earlier one reached with other rules of judgement on the same pack text ('' before).
    3: """
ALTER TABLE findings ADD COLUMN judged_by VARCHAR DEFAULT '';
""",
}
CURRENT_VERSION = max(MIGRATIONS)


def migrate(con, to: int = CURRENT_VERSION) -> int:
    """Apply every migration newer than the database's version, up to ``to`` (default the current one: a lower
    ``to`` writes a store as an older faceaudit did, for tests of upgrades); returns the resulting version."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)"
                ).fetchall()
    have = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0]
    if have > CURRENT_VERSION:
        from audit.errors import StoreError

        raise StoreError(f"database schema version {have} is newer than this faceaudit ({CURRENT_VERSION}); upgrade faceaudit")
    for version in range(have + 1, to + 1):
        con.execute("BEGIN TRANSACTION").fetchall()
        for statement in MIGRATIONS[version].split(";"):
            if statement.strip() and not all(l.strip().startswith("--") or not l.strip()
                                             for l in statement.splitlines()):
                con.execute(statement).fetchall()
        con.execute("INSERT INTO schema_version VALUES (?, now())", [version]).fetchall()
        con.execute("COMMIT").fetchall()
    return max(have, to)
