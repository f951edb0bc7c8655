"""PostgreSQL schema migrations: small, named, ordered steps. Never edit an applied one; add a new one.

The store applies what is missing when it opens, all steps in one transaction under an advisory
lock (so servers starting together migrate once), each recorded in ``schema_migrations``.

Every table has a ``namespace`` column and every key starts with it: one database holds many
teams' or users' memories, and a store only ever reads and writes its own namespace's rows.
Recall uses PostgreSQL's own full-text search: a generated ``tsvector`` (weights A title,
B tags, C problem and works_when, D solution, the ``simple`` configuration: no stemming and no
stopwords, like the SQLite store's tokenizer) with a GIN index.
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
            search TSVECTOR GENERATED ALWAYS AS (
                setweight(to_tsvector('simple', title), 'A')
                || setweight(jsonb_to_tsvector('simple', tags, '["string"]'), 'B')
                || setweight(to_tsvector('simple', problem), 'C')
                || setweight(jsonb_to_tsvector('simple', works_when, '["string"]'), 'C')
                || setweight(to_tsvector('simple', solution), 'D')
            ) STORED,
            UNIQUE (namespace, id)
        );
        CREATE UNIQUE INDEX patterns_content ON patterns (namespace, content_hash, coalesce(project, ''));
        CREATE INDEX patterns_status ON patterns (namespace, status, project);
        CREATE INDEX patterns_search ON patterns USING GIN (search);
        CREATE INDEX patterns_tags ON patterns USING GIN (tags jsonb_path_ops);

        -- Document frequencies for BM25's IDF (ts_rank_cd has none): counted as patterns are inserted.
        -- Patterns are never deleted and their text never changes, so the counts only grow.
        CREATE TABLE search_terms (
            namespace TEXT NOT NULL,
            term TEXT NOT NULL,
            df INTEGER NOT NULL,
            PRIMARY KEY (namespace, term)
        );
        CREATE TABLE search_docs (
            namespace TEXT PRIMARY KEY,
            docs INTEGER NOT NULL
        );
        CREATE FUNCTION ekkmcp_count_terms() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO search_terms (namespace, term, df)
                SELECT NEW.namespace, lexeme, 1 FROM unnest(NEW.search) AS u (lexeme, positions, weights)
                ON CONFLICT (namespace, term) DO UPDATE SET df = search_terms.df + 1;
            INSERT INTO search_docs (namespace, docs) VALUES (NEW.namespace, 1)
                ON CONFLICT (namespace) DO UPDATE SET docs = search_docs.docs + 1;
            RETURN NULL;
        END
        $$;
        CREATE TRIGGER patterns_count_terms AFTER INSERT ON patterns
            FOR EACH ROW EXECUTE FUNCTION ekkmcp_count_terms();

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
TABLES = ("patterns", "search_terms", "search_docs", "pattern_vectors", "recalls", "recall_items", "outcomes",
          "test_runs", "ledger", "directive_proposals", "directive_overrides", "decisions")
