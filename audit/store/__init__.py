"""DuckDB store (schema, migrations, typed reads, validated writes); imports only records, config, errors, helpers."""

from audit.store.db import DEFAULT_DB, Store
from audit.store.schemas import DIRECTIONS, FINDING_STATUSES, RUN_STATUSES, TABLES

__all__ = ["DEFAULT_DB", "Store", "TABLES", "DIRECTIONS", "FINDING_STATUSES", "RUN_STATUSES"]
