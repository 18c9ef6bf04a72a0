-- pin-recovery service state, SQLite. Integers are seconds since the Unix epoch or
-- counters; ids and keys are bytes.

CREATE TABLE meta (
    name  TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) STRICT;

CREATE TABLE devices (
    tenant      TEXT NOT NULL,
    device      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    device_key  BLOB NOT NULL,
    envelope    BLOB,
    envelope_id BLOB,
    PRIMARY KEY (tenant, device),
    CHECK ((envelope IS NULL) = (envelope_id IS NULL))
) STRICT;

CREATE TABLE spent_tokens (
    issuer     TEXT NOT NULL,
    token_id   TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (issuer, token_id)
) STRICT;
CREATE INDEX spent_tokens_by_expiry ON spent_tokens (expires_at);

CREATE TABLE rate_slots (
    scope   TEXT NOT NULL CHECK (scope IN ('user', 'device')),
    tenant  TEXT NOT NULL,
    subject TEXT NOT NULL,
    at      INTEGER NOT NULL
) STRICT;
CREATE INDEX rate_slots_by_subject ON rate_slots (scope, tenant, subject, at);
CREATE INDEX rate_slots_by_time ON rate_slots (at);

CREATE TABLE tenant_serials (
    tenant TEXT PRIMARY KEY NOT NULL,
    serial INTEGER NOT NULL CHECK (serial >= 0)
) STRICT;

CREATE TABLE tenant_keys (
    tenant          TEXT NOT NULL REFERENCES tenant_serials (tenant),
    version         INTEGER NOT NULL CHECK (version >= 1),
    key_id          BLOB NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('current', 'active', 'retired')),
    public_spki     BLOB NOT NULL,
    wrapped_private BLOB,
    PRIMARY KEY (tenant, version),
    UNIQUE (tenant, key_id),
    CHECK ((state = 'retired') = (wrapped_private IS NULL))
) STRICT;
CREATE UNIQUE INDEX one_current_key_per_tenant ON tenant_keys (tenant) WHERE state = 'current';

CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    time        INTEGER NOT NULL,
    action      TEXT NOT NULL,
    tenant      TEXT,
    user_id     TEXT,
    device      TEXT,
    client_ip   TEXT NOT NULL,
    client_type TEXT NOT NULL,
    key_id      BLOB,
    envelope_id BLOB,
    outcome     TEXT NOT NULL,
    reason      TEXT NOT NULL
) STRICT;
