-- pin-recovery service state, PostgreSQL. Integers are seconds since the Unix epoch or
-- counters; ids and keys are bytes.

CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE devices (
    tenant      TEXT NOT NULL,
    device      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    device_key  BYTEA NOT NULL,
    envelope    BYTEA,
    envelope_id BYTEA,
    PRIMARY KEY (tenant, device),
    CHECK ((envelope IS NULL) = (envelope_id IS NULL))
);

CREATE TABLE spent_tokens (
    issuer     TEXT NOT NULL,
    token_id   TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, token_id)
);
CREATE INDEX spent_tokens_by_expiry ON spent_tokens (expires_at);

CREATE TABLE rate_slots (
    scope   TEXT NOT NULL CHECK (scope IN ('user', 'device')),
    tenant  TEXT NOT NULL,
    subject TEXT NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX rate_slots_by_subject ON rate_slots (scope, tenant, subject, at);
CREATE INDEX rate_slots_by_time ON rate_slots (at);

CREATE TABLE tenant_serials (
    tenant TEXT PRIMARY KEY,
    serial BIGINT NOT NULL CHECK (serial >= 0)
);

CREATE TABLE tenant_keys (
    tenant          TEXT NOT NULL REFERENCES tenant_serials (tenant),
    version         INTEGER NOT NULL CHECK (version >= 1),
    key_id          BYTEA NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('current', 'active', 'retired')),
    public_spki     BYTEA NOT NULL,
    wrapped_private BYTEA,
    PRIMARY KEY (tenant, version),
    UNIQUE (tenant, key_id),
    CHECK ((state = 'retired') = (wrapped_private IS NULL))
);
CREATE UNIQUE INDEX one_current_key_per_tenant ON tenant_keys (tenant) WHERE state = 'current';

CREATE TABLE audit_events (
    seq         BIGSERIAL PRIMARY KEY,
    time        BIGINT NOT NULL,
    action      TEXT NOT NULL,
    tenant      TEXT,
    user_id     TEXT,
    device      TEXT,
    client_ip   TEXT NOT NULL,
    client_type TEXT NOT NULL,
    key_id      BYTEA,
    envelope_id BYTEA,
    outcome     TEXT NOT NULL,
    reason      TEXT NOT NULL
);
