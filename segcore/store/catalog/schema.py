"""The catalog's SQLite schema, its version and its limits."""

from __future__ import annotations

SCHEMA_VERSION = 3
FULL_DISK_BYTES = 256 * 1024  # less free space than this: the catalog opens read-only
BUSY_TIMEOUT_S = 10.0
MAX_NAME_LENGTH = 200
EXAMPLES = 5

DEFAULT_CHANNELS: tuple[tuple[str, str, str], ...] = (
    ("email", "email IS NOT NULL AND email_opt_in", "E-mail, opted in"),
    ("sms", "phone IS NOT NULL AND sms_opt_in", "Text messages, opted in"),
    ("push", "push_token IS NOT NULL AND push_opt_in", "Push notifications, opted in"),
    ("whatsapp", "phone IS NOT NULL AND whatsapp_opt_in", "WhatsApp, opted in"),
)

#: A LIKE pattern matching the rule JSON of every rule that has an ``in_segment`` term
#: (a cheap filter before the rules are read as trees).
REFS_LIKE = '%"in\\_segment"%'

#: Header names (case-insensitive) recognised as the id column of an uploaded file.
ID_HEADERS = ("user_id", "userid", "user id", "id", "user", "customer_id")

SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS segments (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL COLLATE NOCASE,
    description TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL CHECK (kind IN ('dynamic', 'static')),
    rule_text   TEXT,
    rule_json   TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    deleted_at  TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS segments_live_name
    ON segments (name) WHERE deleted_at IS NULL;
CREATE TABLE IF NOT EXISTS segment_versions (
    segment_id   INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    kind         TEXT NOT NULL,
    rule_text    TEXT,
    rule_json    TEXT,
    member_count INTEGER,
    saved_at     TEXT NOT NULL,
    action       TEXT NOT NULL
        CHECK (action IN ('create', 'edit', 'delete', 'restore', 'rename', 'members')),
    note         TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (segment_id, version)
);
CREATE TABLE IF NOT EXISTS segment_members (
    segment_id INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    PRIMARY KEY (segment_id, user_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channels (
    name        TEXT PRIMARY KEY COLLATE NOCASE,
    rule_text   TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    position    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS funnels (
    name       TEXT PRIMARY KEY COLLATE NOCASE,
    spec_json  TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""

MEMBER_CHANGES = """
CREATE TABLE IF NOT EXISTS segment_member_changes (
    segment_id INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    user_id    TEXT NOT NULL,
    change     TEXT NOT NULL CHECK (change IN ('+', '-')),
    PRIMARY KEY (segment_id, version, user_id)
) WITHOUT ROWID
"""


