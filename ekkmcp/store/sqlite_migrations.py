"""SQLite schema migrations: small, named, ordered steps. Never edit an applied one; add a new one.

The store applies what is missing when it opens, each step in the same transaction as its
record in ``schema_migrations``; ``PRAGMA user_version`` mirrors the latest applied step.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "patterns_outcomes_recalls",
        """
        CREATE TABLE patterns (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            title TEXT NOT NULL,
            problem TEXT NOT NULL,
            solution TEXT NOT NULL,
            tags TEXT NOT NULL DEFAULT '[]',
            works_when TEXT NOT NULL DEFAULT '[]',
            anti_patterns TEXT NOT NULL DEFAULT '[]',
            project TEXT,
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'quarantined', 'retired')),
            status_reason TEXT,
            content_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            successes INTEGER NOT NULL DEFAULT 0,
            failures INTEGER NOT NULL DEFAULT 0,
            s_weight REAL NOT NULL DEFAULT 0,
            f_weight REAL NOT NULL DEFAULT 0,
            weight_at REAL,
            last_note TEXT
        );
        CREATE UNIQUE INDEX patterns_content ON patterns (content_hash, ifnull(project, ''));
        CREATE INDEX patterns_status ON patterns (status, project);

        CREATE TABLE pattern_tags (
            pattern_seq INTEGER NOT NULL REFERENCES patterns (seq),
            tag TEXT NOT NULL,
            PRIMARY KEY (tag, pattern_seq)
        ) WITHOUT ROWID;

        CREATE VIRTUAL TABLE patterns_fts USING fts5 (
            title, problem, solution, tags, works_when,
            content = 'patterns', content_rowid = 'seq', tokenize = 'unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER patterns_fts_insert AFTER INSERT ON patterns BEGIN
            INSERT INTO patterns_fts (rowid, title, problem, solution, tags, works_when)
            VALUES (new.seq, new.title, new.problem, new.solution, new.tags, new.works_when);
        END;
        CREATE TRIGGER patterns_fts_delete AFTER DELETE ON patterns BEGIN
            INSERT INTO patterns_fts (patterns_fts, rowid, title, problem, solution, tags, works_when)
            VALUES ('delete', old.seq, old.title, old.problem, old.solution, old.tags, old.works_when);
        END;
        CREATE TRIGGER patterns_fts_update AFTER UPDATE OF title, problem, solution, tags, works_when ON patterns BEGIN
            INSERT INTO patterns_fts (patterns_fts, rowid, title, problem, solution, tags, works_when)
            VALUES ('delete', old.seq, old.title, old.problem, old.solution, old.tags, old.works_when);
            INSERT INTO patterns_fts (rowid, title, problem, solution, tags, works_when)
            VALUES (new.seq, new.title, new.problem, new.solution, new.tags, new.works_when);
        END;

        CREATE TABLE recalls (
            id TEXT PRIMARY KEY,
            query TEXT NOT NULL,
            project TEXT,
            created_at TEXT NOT NULL,
            created_ts REAL NOT NULL
        );
        CREATE INDEX recalls_time ON recalls (created_ts);
        CREATE TABLE recall_items (
            recall_id TEXT NOT NULL REFERENCES recalls (id),
            pattern_id TEXT NOT NULL,
            rank INTEGER NOT NULL,
            PRIMARY KEY (recall_id, pattern_id)
        ) WITHOUT ROWID;
        CREATE INDEX recall_items_pattern ON recall_items (pattern_id);

        CREATE TABLE outcomes (
            seq INTEGER PRIMARY KEY,
            uid TEXT NOT NULL UNIQUE,
            pattern_id TEXT NOT NULL REFERENCES patterns (id),
            recall_id TEXT,
            outcome TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
            weight REAL NOT NULL,
            source TEXT NOT NULL,
            note TEXT,
            recorded_at TEXT NOT NULL,
            recorded_ts REAL NOT NULL
        );
        CREATE INDEX outcomes_pattern ON outcomes (pattern_id, seq);
        CREATE INDEX outcomes_recall ON outcomes (recall_id, pattern_id);
        CREATE INDEX outcomes_time ON outcomes (recorded_ts);
        """,
    ),
    (
        "ledger",
        """
        CREATE TABLE ledger (
            seq INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            subject TEXT,
            payload TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE INDEX ledger_kind ON ledger (kind, seq);
        CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger BEGIN
            SELECT RAISE(ABORT, 'the ledger is append-only: entries cannot be changed');
        END;
        CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger BEGIN
            SELECT RAISE(ABORT, 'the ledger is append-only: entries cannot be deleted');
        END;
        """,
    ),
    (
        "directives",
        """
        CREATE TABLE directive_proposals (
            id TEXT PRIMARY KEY,
            body TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('proposed', 'active', 'rejected', 'disabled')),
            project TEXT,
            created_at TEXT NOT NULL,
            decided_at TEXT
        );
        CREATE TABLE directive_overrides (
            directive_id TEXT PRIMARY KEY,
            status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
            updated_at TEXT NOT NULL
        );
        CREATE TABLE decisions (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            at TEXT NOT NULL,
            at_ts REAL NOT NULL,
            kind TEXT NOT NULL,
            tool TEXT,
            project TEXT,
            verdict TEXT NOT NULL CHECK (verdict IN ('allow', 'warn', 'block')),
            directive_ids TEXT NOT NULL DEFAULT '[]',
            log_only_ids TEXT NOT NULL DEFAULT '[]',
            action_sha256 TEXT NOT NULL,
            action TEXT,
            source TEXT NOT NULL DEFAULT 'mcp'
        );
        CREATE INDEX decisions_time ON decisions (at_ts);
        """,
    ),
    (
        # The recall index (ekkmcp.store.sqlite_search): BM25 impacts per (term, pattern), readable best-first.
        # Filled by the store in Python as patterns are inserted; patterns already stored are indexed on open.
        "search_index",
        """
        CREATE TABLE search_postings (
            term TEXT NOT NULL,
            seq INTEGER NOT NULL,
            impact INTEGER NOT NULL,
            PRIMARY KEY (term, seq)
        ) WITHOUT ROWID;
        CREATE INDEX search_postings_impact ON search_postings (term, impact DESC);
        CREATE TABLE search_terms (
            term TEXT PRIMARY KEY,
            df INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE search_stats (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            docs INTEGER NOT NULL,
            indexed_seq INTEGER NOT NULL
        );
        INSERT INTO search_stats (id, docs, indexed_seq) VALUES (1, 0, 0);
        """,
    ),
    (
        # Closing the loop from test runs: where each recall was made, and the runs seen so far.
        "recall_cwd_and_test_runs",
        """
        ALTER TABLE recalls ADD COLUMN cwd TEXT;
        CREATE INDEX recalls_cwd ON recalls (cwd, created_ts);
        CREATE TABLE test_runs (
            seq INTEGER PRIMARY KEY,
            cwd TEXT NOT NULL,
            command TEXT NOT NULL,
            succeeded INTEGER NOT NULL,
            at TEXT NOT NULL,
            at_ts REAL NOT NULL
        );
        CREATE INDEX test_runs_cwd ON test_runs (cwd, at_ts);
        """,
    ),
    (
        # Hybrid recall (ekkmcp.semantic): one vector per pattern and model; seq orders writes so a process's
        # in-memory index reads only what is new. The BLOB is a float32 scale + int8 components.
        "pattern_vectors",
        """
        CREATE TABLE pattern_vectors (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            pattern_seq INTEGER NOT NULL UNIQUE REFERENCES patterns (seq),
            model TEXT NOT NULL,
            vector BLOB NOT NULL
        );
        CREATE INDEX pattern_vectors_model ON pattern_vectors (model, seq);
        """,
    ),
    (
        # The recall index becomes exact BM25 (ekkmcp.store.sqlite_search): one row per term holding its posting
        # list (little-endian int32 pattern seqs, uint16 weighted frequencies) and, in search_meta, every pattern's
        # length in tokens (uint32 per seq). Filled from the patterns when the store opens.
        "search_blocks",
        """
        DROP TABLE search_postings;
        DROP TABLE search_terms;
        DROP TABLE search_stats;
        CREATE TABLE search_blocks (
            term TEXT PRIMARY KEY,
            seqs BLOB NOT NULL,
            freqs BLOB NOT NULL
        );
        CREATE TABLE search_meta (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            version INTEGER NOT NULL,
            built_seq INTEGER NOT NULL,
            docs INTEGER NOT NULL,
            tokens INTEGER NOT NULL,
            lengths BLOB NOT NULL
        );
        INSERT INTO search_meta (id, version, built_seq, docs, tokens, lengths) VALUES (1, 0, 0, 0, 0, X'');
        """,
    ),
    (
        # Each process keeps what recall filters and ranks by (status, project, evidence) in memory
        # (ekkmcp.store.sqlite_search._State) and reads only the patterns changed since: a trigger stamps a
        # changed pattern with the next value of search_meta.revs.
        "pattern_revisions",
        """
        ALTER TABLE patterns ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX patterns_rev ON patterns (rev) WHERE rev > 0;
        ALTER TABLE search_meta ADD COLUMN revs INTEGER NOT NULL DEFAULT 0;
        CREATE TRIGGER patterns_state_changed
        AFTER UPDATE OF id, status, project, successes, failures, s_weight, f_weight, weight_at ON patterns
        BEGIN
            UPDATE search_meta SET revs = revs + 1;
            UPDATE patterns SET rev = (SELECT revs FROM search_meta) WHERE seq = NEW.seq;
        END;
        """,
    ),
]

LATEST_VERSION = len(MIGRATIONS)
