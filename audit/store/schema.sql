-- faceaudit store, schema version 1. Columns here and the pandera schemas in
-- audit/store/schemas.py are kept in step by tests/store/test_schema.py.
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER NOT NULL,
    applied_at  TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS models (
    model_id    VARCHAR PRIMARY KEY,   -- SHA-256 of the .onnx file (with external data: of its files' checksums)
    name        VARCHAR NOT NULL,
    path        VARCHAR NOT NULL,
    size_bytes  BIGINT NOT NULL,
    opset       INTEGER NOT NULL,
    producer    VARCHAR NOT NULL,
    info        JSON NOT NULL,         -- inputs/outputs/metadata as recorded
    profile     JSON NOT NULL,
    added_at    TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS datasets (
    dataset_id  VARCHAR PRIMARY KEY,   -- SHA-256 of manifest + file hashes
    name        VARCHAR NOT NULL,
    source      VARCHAR NOT NULL,
    n_images    BIGINT NOT NULL,
    n_subjects  BIGINT NOT NULL,
    attributes  JSON NOT NULL,         -- {attribute: {value: count}} or summary stats
    added_at    TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS data_quality (
    dataset_id  VARCHAR NOT NULL,
    image       VARCHAR NOT NULL,
    row_number  BIGINT NOT NULL,       -- 1-based manifest row
    problem     VARCHAR NOT NULL,
    detail      VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id      VARCHAR PRIMARY KEY,
    model_id    VARCHAR NOT NULL,
    dataset_id  VARCHAR NOT NULL,
    status      VARCHAR NOT NULL,      -- running / completed / failed / cancelled / interrupted
    config      JSON NOT NULL,
    seed        BIGINT NOT NULL,
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    pid         INTEGER NOT NULL,
    host        VARCHAR NOT NULL,
    error       VARCHAR,
    environment JSON NOT NULL,         -- package versions, platform, device
    parity      JSON                   -- torch vs ort parity check, when run
);
CREATE TABLE IF NOT EXISTS run_probes (
    run_id      VARCHAR NOT NULL,
    probe       VARCHAR NOT NULL,
    status      VARCHAR NOT NULL,      -- completed / failed / skipped
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    seconds     DOUBLE NOT NULL,
    message     VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id      VARCHAR NOT NULL,
    probe       VARCHAR NOT NULL,
    condition   VARCHAR NOT NULL,
    metric      VARCHAR NOT NULL,
    attribute   VARCHAR NOT NULL,      -- '' when the metric is about no attribute
    "group"     VARCHAR NOT NULL,      -- 'all' or a subgroup value
    setting     VARCHAR NOT NULL,      -- probe-specific context (attacker setting, FMR target), '' if none
    value       DOUBLE,
    ci_low      DOUBLE,
    ci_high     DOUBLE,
    n           BIGINT NOT NULL,
    direction   VARCHAR NOT NULL       -- higher_is_riskier / lower_is_riskier / neutral
);
CREATE TABLE IF NOT EXISTS findings (
    run_id      VARCHAR NOT NULL,
    pack        VARCHAR NOT NULL,
    pack_version VARCHAR NOT NULL,
    rule_id     VARCHAR NOT NULL,
    title       VARCHAR NOT NULL,
    status      VARCHAR NOT NULL,      -- pass / warn / fail / not_applicable
    severity    VARCHAR NOT NULL,
    observed    DOUBLE,
    warn_if     VARCHAR NOT NULL,
    fail_if     VARCHAR NOT NULL,
    judged      VARCHAR NOT NULL,      -- value / ci_low / ci_high
    location    JSON NOT NULL,         -- the metric row(s) the rule judged
    refs        JSON NOT NULL,
    message     VARCHAR NOT NULL,
    evaluated_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id      VARCHAR NOT NULL,
    probe       VARCHAR NOT NULL,
    name        VARCHAR NOT NULL,
    mime        VARCHAR NOT NULL,
    data        BLOB NOT NULL,
    meta        JSON NOT NULL
);
CREATE TABLE IF NOT EXISTS embeddings (
    model_id    VARCHAR NOT NULL,
    dataset_id  VARCHAR NOT NULL,
    condition   VARCHAR NOT NULL,
    seed        BIGINT NOT NULL,
    row_index   BIGINT NOT NULL,       -- 0-based manifest row
    vector      FLOAT[] NOT NULL
);
