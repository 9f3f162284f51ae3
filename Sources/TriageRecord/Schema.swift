// The record's schema, versioned with `PRAGMA user_version` and changed only by the ordered
// migrations below. A database at version N is brought to the current version by running
// migrations N+1 … current, all inside one IMMEDIATE transaction together with the new
// user_version, so a crash or a second process never sees a half-migrated database.
//
// Never edit a released migration: add a new one at the end.

enum Schema {
    struct Migration {
        let version: Int
        let summary: String
        let statements: [String]
    }

    /// The version this code reads and writes.
    static var currentVersion: Int { migrations.last!.version }

    static let migrations: [Migration] = [
        Migration(version: 1, summary: "decisions, tier calls and the hash salt", statements: [v1Meta, v1Decisions, v1TierCalls]
                  + v1Indexes),
        Migration(version: 2, summary: "task category, review flag, shadow mode, answer confidence",
                  statements: v2Changes),
        Migration(version: 3, summary: "fleet: a unique id and node per decision, gaps, the shipping watermark",
                  statements: v3Changes),
        Migration(version: 4, summary: "the review queue, its labels and candidate model results", statements: v4Review),
        Migration(version: 5, summary: "fleet: review labels get a revision, so a label imported or corrected later is shipped",
                  statements: v5LabelRevisions),
    ]

    // MARK: Version 1 — the first release: no category, review flag, shadow comparison or
    // answer confidence.

    static let v1Meta = """
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY NOT NULL,
            value TEXT NOT NULL
        )
        """

    static let v1Decisions = """
        CREATE TABLE decisions (
            id                     INTEGER PRIMARY KEY AUTOINCREMENT,
            timestamp              REAL    NOT NULL,
            model_version          TEXT    NOT NULL,
            route                  TEXT    NOT NULL,
            reason                 TEXT    NOT NULL,
            label                  TEXT    NOT NULL,
            confidence             REAL    NOT NULL,
            out_of_scope           INTEGER NOT NULL,
            complexity             REAL    NOT NULL,
            complexity_length      REAL    NOT NULL,
            complexity_syntax      REAL    NOT NULL,
            complexity_uncertainty REAL    NOT NULL,
            complexity_emotion     REAL    NOT NULL,
            cost_usd               REAL    NOT NULL,
            tokenize_ms            REAL    NOT NULL,
            edge_ms                REAL    NOT NULL,
            cloud_ms               REAL    NOT NULL,
            total_ms               REAL    NOT NULL,
            cached                 INTEGER NOT NULL,
            query_text             TEXT,
            query_hash             TEXT    NOT NULL,
            answer                 TEXT    NOT NULL
        )
        """

    static let v1TierCalls = """
        CREATE TABLE tier_calls (
            decision_id         INTEGER NOT NULL REFERENCES decisions(id) ON DELETE CASCADE,
            position            INTEGER NOT NULL,
            tier                TEXT    NOT NULL,
            model               TEXT    NOT NULL,
            attempts            INTEGER NOT NULL,
            statuses            TEXT    NOT NULL,
            input_tokens        INTEGER NOT NULL,
            output_tokens       INTEGER NOT NULL,
            cost_usd            REAL    NOT NULL,
            latency_ms          REAL    NOT NULL,
            succeeded           INTEGER NOT NULL,
            rejected_by_breaker INTEGER NOT NULL,
            error               TEXT,
            PRIMARY KEY (decision_id, position)
        )
        """

    static let v1Indexes = [
        "CREATE INDEX decisions_timestamp ON decisions(timestamp)",
        "CREATE INDEX decisions_route ON decisions(route)",
    ]

    // MARK: Version 2

    static let v2Changes = [
        "ALTER TABLE decisions ADD COLUMN category TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE decisions ADD COLUMN review INTEGER NOT NULL DEFAULT 0",
        // Shadow mode: all three NULL when the query was not run in shadow mode;
        // shadow_edge_route is never NULL when it was.
        "ALTER TABLE decisions ADD COLUMN shadow_edge_route TEXT",
        "ALTER TABLE decisions ADD COLUMN shadow_edge_reason TEXT",
        "ALTER TABLE decisions ADD COLUMN shadow_cloud_label TEXT",
        "ALTER TABLE tier_calls ADD COLUMN answer_confidence REAL",
        // Counting repeated queries by their salted hash.
        "CREATE INDEX decisions_query_hash ON decisions(query_hash)",
    ]
}

extension Schema {
    // MARK: Version 3 — current: the fleet.

    /// Rows recorded before version 3 get a random uid here (SQLite's randomblob comes from
    /// its seeded CSPRNG) and an empty node, which the shipper replaces with its own node:
    /// they were recorded on this box.
    static let v3Changes = [
        "ALTER TABLE decisions ADD COLUMN uid TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE decisions ADD COLUMN node TEXT NOT NULL DEFAULT ''",
        "UPDATE decisions SET uid = lower(hex(randomblob(16))) WHERE uid = ''",
        "CREATE UNIQUE INDEX decisions_uid ON decisions(uid)",
        // Decisions dropped unshipped because the backlog passed record.max_pending: the
        // loss is itself a record, shipped and reported like a decision.
        """
        CREATE TABLE gaps (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            uid             TEXT    NOT NULL UNIQUE,
            node            TEXT    NOT NULL,
            recorded_at     REAL    NOT NULL,
            first_timestamp REAL    NOT NULL,
            last_timestamp  REAL    NOT NULL,
            dropped         INTEGER NOT NULL,
            cost_usd        REAL    NOT NULL,
            reason          TEXT    NOT NULL
        )
        """,
    ]
}
