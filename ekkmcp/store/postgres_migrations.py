"""PostgreSQL schema migrations: small, named, ordered steps. Never edit an applied one; add a new one.

The store applies what is missing when it opens, all steps in one transaction under an advisory
lock (so servers starting together migrate once), each recorded in ``schema_migrations``.

Every table has a ``namespace`` column and every key starts with it: one database holds many
teams' or users' memories, and a store only ever reads and writes its own namespace's rows.
Recall ranks exactly as the SQLite store's FTS5 ``bm25()`` does, from an inverted index the store
writes with each pattern: ``pattern_terms`` holds, per pattern and term (FTS5's tokens), the
column-weighted term frequency and the pattern's length in tokens; ``search_stats`` the number of
patterns and of tokens per namespace (added once per write transaction, never per row). A term's
document frequency is the count of its rows, read with them at query time.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "initial_schema",
        """
        CREATE TABLE patterns (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            namespace TEXT NOT NULL,
            id TEXT NOT NULL,
            title TEXT NOT NULL,
            problem TEXT NOT NULL,
            solution TEXT NOT NULL,
            tags JSONB NOT NULL DEFAULT '[]',
            works_when JSONB NOT NULL DEFAULT '[]',
            anti_patterns JSONB NOT NULL DEFAULT '[]',
            project TEXT,
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'quarantined', 'retired')),
            status_reason TEXT,
            content_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            successes INTEGER NOT NULL DEFAULT 0,
            failures INTEGER NOT NULL DEFAULT 0,
            s_weight DOUBLE PRECISION NOT NULL DEFAULT 0,
            f_weight DOUBLE PRECISION NOT NULL DEFAULT 0,
            weight_at DOUBLE PRECISION,
            last_note TEXT,
            UNIQUE (namespace, id)
        );
        CREATE UNIQUE INDEX patterns_content ON patterns (namespace, content_hash, coalesce(project, ''));
        CREATE INDEX patterns_status ON patterns (namespace, status, project);
        CREATE INDEX patterns_tags ON patterns USING GIN (tags jsonb_path_ops);

        -- Recall's BM25 (see the module's docstring). Patterns are never deleted and their text never changes,
        -- so rows are only added. freq = Σ column weight × occurrences; length = the pattern's tokens in all columns.
        CREATE TABLE pattern_terms (
            namespace TEXT NOT NULL,
            term TEXT NOT NULL,
            pattern_seq BIGINT NOT NULL,
            freq INTEGER NOT NULL,
            length INTEGER NOT NULL,
            PRIMARY KEY (namespace, term, pattern_seq) INCLUDE (freq, length)  -- index-only postings
        );
        CREATE TABLE search_stats (
            namespace TEXT PRIMARY KEY,
            docs BIGINT NOT NULL,
            tokens BIGINT NOT NULL
        );

        -- Hybrid recall (ekkmcp.semantic): one opaque vector per pattern; seq orders writes (a replaced vector
        -- gets a new seq) so each process's in-memory index reads only what is new.
        CREATE TABLE pattern_vectors (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            namespace TEXT NOT NULL,
            pattern_id TEXT NOT NULL,
            model TEXT NOT NULL,
            vector BYTEA NOT NULL,
            UNIQUE (namespace, pattern_id),
            FOREIGN KEY (namespace, pattern_id) REFERENCES patterns (namespace, id)
        );
        CREATE INDEX pattern_vectors_model ON pattern_vectors (namespace, model, seq);

        CREATE TABLE recalls (
            seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
            namespace TEXT NOT NULL,
            id TEXT NOT NULL,
            query TEXT NOT NULL,
            project TEXT,
            created_at TEXT NOT NULL,
            created_ts DOUBLE PRECISION NOT NULL,
            cwd TEXT,
            PRIMARY KEY (namespace, id)
        );
        CREATE INDEX recalls_time ON recalls (namespace, created_ts);
        CREATE INDEX recalls_cwd ON recalls (namespace, cwd, created_ts);
        CREATE TABLE recall_items (
            namespace TEXT NOT NULL,
            recall_id TEXT NOT NULL,
            pattern_id TEXT NOT NULL,
            rank INTEGER NOT NULL,
            PRIMARY KEY (namespace, recall_id, pattern_id),
            FOREIGN KEY (namespace, recall_id) REFERENCES recalls (namespace, id)
        );
        CREATE INDEX recall_items_pattern ON recall_items (namespace, pattern_id);

        CREATE TABLE outcomes (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            namespace TEXT NOT NULL,
            uid TEXT NOT NULL,
            pattern_id TEXT NOT NULL,
            recall_id TEXT,
            outcome TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
            weight DOUBLE PRECISION NOT NULL,
            source TEXT NOT NULL,
            note TEXT,
            recorded_at TEXT NOT NULL,
            recorded_ts DOUBLE PRECISION NOT NULL,
            UNIQUE (namespace, uid),
            FOREIGN KEY (namespace, pattern_id) REFERENCES patterns (namespace, id)
        );
        CREATE INDEX outcomes_pattern ON outcomes (namespace, pattern_id, seq);
        CREATE INDEX outcomes_recall ON outcomes (namespace, recall_id, pattern_id);
        CREATE INDEX outcomes_time ON outcomes (namespace, recorded_ts);

        CREATE TABLE test_runs (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            namespace TEXT NOT NULL,
            cwd TEXT NOT NULL,
            command TEXT NOT NULL,
            succeeded BOOLEAN NOT NULL,
            at TEXT NOT NULL,
            at_ts DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX test_runs_cwd ON test_runs (namespace, cwd, at_ts);

        -- payload is kept as the exact JSON text that was hashed
        CREATE TABLE ledger (
            namespace TEXT NOT NULL,
            seq BIGINT NOT NULL,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            subject TEXT,
            payload TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL,
            PRIMARY KEY (namespace, seq)
        );
        CREATE INDEX ledger_kind ON ledger (namespace, kind, seq);
        CREATE FUNCTION ekkmcp_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the ledger is append-only: entries cannot be %',
                CASE TG_OP WHEN 'UPDATE' THEN 'changed' ELSE 'deleted' END;
        END
        $$;
        CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
            FOR EACH ROW EXECUTE FUNCTION ekkmcp_ledger_append_only();
        CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
            FOR EACH ROW EXECUTE FUNCTION ekkmcp_ledger_append_only();
        CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger
            FOR EACH STATEMENT EXECUTE FUNCTION ekkmcp_ledger_append_only();

        CREATE TABLE directive_proposals (
            namespace TEXT NOT NULL,
            id TEXT NOT NULL,
            body TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('proposed', 'active', 'rejected', 'disabled')),
            project TEXT,
            created_at TEXT NOT NULL,
            decided_at TEXT,
            PRIMARY KEY (namespace, id)
        );
        CREATE TABLE directive_overrides (
            namespace TEXT NOT NULL,
            directive_id TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
            updated_at TEXT NOT NULL,
            PRIMARY KEY (namespace, directive_id)
        );
        CREATE TABLE decisions (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            namespace TEXT NOT NULL,
            id TEXT NOT NULL,
            at TEXT NOT NULL,
            at_ts DOUBLE PRECISION NOT NULL,
            kind TEXT NOT NULL,
            tool TEXT,
            project TEXT,
            verdict TEXT NOT NULL CHECK (verdict IN ('allow', 'warn', 'block')),
            directive_ids TEXT NOT NULL DEFAULT '[]',
            log_only_ids TEXT NOT NULL DEFAULT '[]',
            action_sha256 TEXT NOT NULL,
            action TEXT,
            source TEXT NOT NULL DEFAULT 'mcp',
            UNIQUE (namespace, id)
        );
        CREATE INDEX decisions_time ON decisions (namespace, at_ts);
        """,
    ),
]

LATEST_VERSION = len(MIGRATIONS)

# The tables ekkmcp owns (row-level security policies and tests walk this list).
TABLES = ("patterns", "pattern_terms", "search_stats", "pattern_vectors", "recalls", "recall_items", "outcomes",
          "test_runs", "ledger", "directive_proposals", "directive_overrides", "decisions")
