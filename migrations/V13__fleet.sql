-- ============================================
-- V13: the fleet: every live client (a bot's LiveConfig, over HTTP or on the database) registers itself
-- and reports the activation it applied per domain, so an operator sees who runs what, and an activation
-- can wait until every live client applied it
-- ============================================
-- Runs as-is: psql -v ON_ERROR_STOP=1 -1 -f V13__fleet.sql
-- Run it as the owner of the walltrack tables (or a superuser), as V11 and V12.
-- What it adds, for every client:
--   * walltrack.fleet_clients: one row per client (its id is chosen by the client, one per process), with
--     its name, host, pid, library version, transport (http or database), the domains it follows, its
--     heartbeat, when it started and was last heard from, and {domain: activation sequence} it applied.
--     Readable by every role that may use schema walltrack (it holds no secret: names, hosts, pids);
--     written by nobody but the two functions below, whatever was granted;
--   * walltrack.fleet_report(...): register or refresh a client; SECURITY DEFINER, so a bot whose role may
--     only read the config tables can report. Every argument is checked (SQLSTATE 22023, COLUMN names the
--     argument). A client id belongs to whoever first reported it (the declared actor, and the database
--     user): another reporter may neither overwrite nor remove it (WT001). At most 10,000 clients: a new
--     id past that is refused (WT001). Each report also deletes up to 100 rows not heard from for 24 h;
--   * walltrack.fleet_leave(id): a client leaving; true when it was there.
-- A client is stale when not heard from for 3 of its heartbeats: it stays listed, marked so by readers
-- (computed from the clock when read, nothing is written for it).
-- squawk-ignore-file prefer-robust-stmts, require-concurrent-index-creation, prefer-bigint-over-int
-- (why: the file runs in one transaction, where CONCURRENTLY cannot run and IF NOT EXISTS would only
--  hide a bad state; the table it indexes is created empty by the file itself; pid is a process id, which
--  no system makes wider than 32 bits.)

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- ---------- the table ----------

CREATE TABLE walltrack.fleet_clients (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    version TEXT NOT NULL,
    transport TEXT NOT NULL,
    domains TEXT[] NOT NULL,
    heartbeat_s REAL NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT statement_timestamp(),
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT statement_timestamp(),
    applied JSONB NOT NULL DEFAULT '{}',
    reported_by TEXT NOT NULL,
    db_user TEXT NOT NULL,
    CONSTRAINT chk_fleet_clients_name CHECK (char_length(name) BETWEEN 1 AND 200),
    CONSTRAINT chk_fleet_clients_host CHECK (char_length(host) BETWEEN 1 AND 255),
    CONSTRAINT chk_fleet_clients_pid CHECK (pid > 0),
    CONSTRAINT chk_fleet_clients_version CHECK (char_length(version) BETWEEN 1 AND 64),
    CONSTRAINT chk_fleet_clients_transport CHECK (transport IN ('http', 'database')),
    CONSTRAINT chk_fleet_clients_domains CHECK (
        cardinality(domains) BETWEEN 1 AND 7
        AND domains <@ ARRAY['trading', 'scoring', 'discovery', 'cluster', 'risk', 'exit', 'api']),
    CONSTRAINT chk_fleet_clients_heartbeat CHECK (heartbeat_s BETWEEN 0.01 AND 3600),
    CONSTRAINT chk_fleet_clients_applied CHECK (jsonb_typeof(applied) = 'object')
);
CREATE INDEX idx_fleet_clients_last_seen ON walltrack.fleet_clients (last_seen_at);
COMMENT ON TABLE walltrack.fleet_clients IS 'Live clients (bots) and the activation each applied per domain (V13); written only by walltrack.fleet_report and walltrack.fleet_leave.';
COMMENT ON COLUMN walltrack.fleet_clients.id IS 'Chosen by the client, one per process.';
COMMENT ON COLUMN walltrack.fleet_clients.name IS 'As the bot names itself, else host:pid; 1-200 printable characters.';
COMMENT ON COLUMN walltrack.fleet_clients.host IS 'The host name the client runs on, as it says.';
COMMENT ON COLUMN walltrack.fleet_clients.pid IS 'The client''s process id on its host.';
COMMENT ON COLUMN walltrack.fleet_clients.version IS 'The walltrack-config version the client runs.';
COMMENT ON COLUMN walltrack.fleet_clients.transport IS 'http (through a server''s stream) or database (its own LISTEN connection).';
COMMENT ON COLUMN walltrack.fleet_clients.domains IS 'The domains it follows.';
COMMENT ON COLUMN walltrack.fleet_clients.heartbeat_s IS 'Seconds between its reports; not heard from for 3 of them, it is stale.';
COMMENT ON COLUMN walltrack.fleet_clients.started_at IS 'Its first report.';
COMMENT ON COLUMN walltrack.fleet_clients.last_seen_at IS 'Its last report; rows not seen for 24 h are deleted by later reports.';
COMMENT ON COLUMN walltrack.fleet_clients.applied IS '{domain: activation sequence} it applied, its callbacks done.';
COMMENT ON COLUMN walltrack.fleet_clients.reported_by IS 'Who reports it, as declared (walltrack.actor, or the server''s token:<name>), else the database user; only they may report or remove it.';
COMMENT ON COLUMN walltrack.fleet_clients.db_user IS 'The database user of the session that first reported it; only it may report or remove it.';

-- ---------- checking what a client says ----------

-- Why a text argument cannot be stored (NULL: it can): 1 to max_length characters, no control or bidi
-- character, and at least one visible one (the names' rule of V11).
CREATE FUNCTION walltrack.fleet_text_problem(value TEXT, max_length INT) RETURNS TEXT
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN value IS NULL OR char_length(value) NOT BETWEEN 1 AND max_length
            THEN format('must be 1 to %s characters', max_length)
        WHEN value ~ '[\u0001-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]'
            THEN 'must be printable: no control or bidi characters'
        WHEN value !~ '[^ \u00a0\u00ad\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u3000\ufeff]'
            THEN 'needs a visible character'
    END
$$;

-- ---------- reporting ----------

-- SECURITY DEFINER: the table is written as its owner, by whoever may execute this (everyone), and only
-- as this function writes it. actor: who reports, when a server reports for its HTTP clients (the token).
CREATE FUNCTION walltrack.fleet_report(client_id UUID, client_name TEXT, client_host TEXT, client_pid INT,
                                       client_version TEXT, client_transport TEXT, client_domains TEXT[],
                                       client_heartbeat_s REAL, client_applied JSONB, actor TEXT DEFAULT NULL)
RETURNS VOID LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    known_domains TEXT[] := ARRAY['trading', 'scoring', 'discovery', 'cluster', 'risk', 'exit', 'api'];
    reporter TEXT := left(coalesce(nullif(actor, ''), walltrack.config_actor()), 100);
    problem TEXT;
    field TEXT;
    entry RECORD;
    owner_row RECORD;
BEGIN
    IF client_id IS NULL THEN
        RAISE EXCEPTION 'id is required' USING ERRCODE = 'invalid_parameter_value', COLUMN = 'id';
    END IF;
    FOR field, problem IN VALUES ('name', walltrack.fleet_text_problem(client_name, 200)),
                                 ('host', walltrack.fleet_text_problem(client_host, 255)),
                                 ('version', walltrack.fleet_text_problem(client_version, 64)) LOOP
        IF problem IS NOT NULL THEN
            RAISE EXCEPTION '% %', field, problem USING ERRCODE = 'invalid_parameter_value', COLUMN = field;
        END IF;
    END LOOP;
    IF client_pid IS NULL OR client_pid < 1 THEN
        RAISE EXCEPTION 'pid must be a positive integer, not %', coalesce(client_pid::text, 'null')
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'pid';
    END IF;
    IF client_transport IS NULL OR client_transport NOT IN ('http', 'database') THEN
        RAISE EXCEPTION 'transport must be http or database, not %', quote_nullable(left(client_transport, 40))
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'transport';
    END IF;
    FOR problem IN SELECT d FROM unnest(client_domains) AS d WHERE d IS NULL OR d <> ALL (known_domains) LOOP
        RAISE EXCEPTION 'unknown domain %; domains are %', quote_nullable(left(problem, 40)),
            array_to_string(known_domains, ', ') USING ERRCODE = 'invalid_parameter_value', COLUMN = 'domains';
    END LOOP;
    IF client_domains IS NULL OR cardinality(client_domains) = 0 OR array_ndims(client_domains) <> 1
       OR cardinality(client_domains) <> (SELECT count(DISTINCT d) FROM unnest(client_domains) AS d) THEN
        RAISE EXCEPTION 'domains must list 1 to 7 distinct domains'
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'domains';
    END IF;
    -- NaN is above every number in PostgreSQL, and Infinity above 3600: both refused here.
    IF client_heartbeat_s IS NULL OR NOT client_heartbeat_s BETWEEN 0.01 AND 3600 THEN
        RAISE EXCEPTION 'heartbeat must be from 0.01 to 3600 seconds, not %', coalesce(client_heartbeat_s::text, 'null')
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'heartbeat';
    END IF;
    IF jsonb_typeof(client_applied) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'applied must be a JSON object of domain to activation sequence'
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'applied';
    END IF;
    FOR entry IN SELECT key, value FROM jsonb_each(client_applied) LOOP
        IF NOT entry.key = ANY (client_domains) THEN
            RAISE EXCEPTION 'applied names %, which is not one of the client''s domains (%)',
                quote_literal(left(entry.key, 40)), array_to_string(client_domains, ', ')
                USING ERRCODE = 'invalid_parameter_value', COLUMN = 'applied';
        END IF;
        IF jsonb_typeof(entry.value) <> 'number' OR entry.value::text::numeric <> trunc(entry.value::text::numeric)
           OR entry.value::text::numeric NOT BETWEEN 0 AND 9223372036854775807 THEN
            RAISE EXCEPTION 'applied % must be an activation sequence (an integer from 0), not %',
                entry.key, left(entry.value::text, 40) USING ERRCODE = 'invalid_parameter_value', COLUMN = 'applied';
        END IF;
    END LOOP;

    -- Housekeeping, cheap and never waiting: clients not heard from for a day are gone.
    DELETE FROM walltrack.fleet_clients WHERE id IN (
        SELECT f.id FROM walltrack.fleet_clients AS f WHERE f.last_seen_at < statement_timestamp() - interval '24 hours'
        ORDER BY f.last_seen_at LIMIT 100 FOR UPDATE SKIP LOCKED);

    SELECT f.reported_by, f.db_user INTO owner_row FROM walltrack.fleet_clients AS f WHERE f.id = client_id;
    IF NOT FOUND AND (SELECT count(*) FROM walltrack.fleet_clients) >= 10000 THEN
        RAISE EXCEPTION 'the fleet has 10000 clients already; client % is not registered', client_id
            USING ERRCODE = 'WT001',
            HINT = 'Clients not heard from for 24 h are removed; a client should keep one id for its whole process.';
    END IF;
    INSERT INTO walltrack.fleet_clients AS f
        (id, name, host, pid, version, transport, domains, heartbeat_s, started_at, last_seen_at, applied,
         reported_by, db_user)
    VALUES (client_id, client_name, client_host, client_pid, client_version, client_transport, client_domains,
            client_heartbeat_s, statement_timestamp(), statement_timestamp(), client_applied, reporter, session_user)
    ON CONFLICT (id) DO UPDATE
        SET name = EXCLUDED.name, host = EXCLUDED.host, pid = EXCLUDED.pid, version = EXCLUDED.version,
            transport = EXCLUDED.transport, domains = EXCLUDED.domains, heartbeat_s = EXCLUDED.heartbeat_s,
            last_seen_at = EXCLUDED.last_seen_at, applied = EXCLUDED.applied
        WHERE f.reported_by = EXCLUDED.reported_by AND f.db_user = EXCLUDED.db_user;
    IF NOT FOUND THEN
        SELECT f.reported_by, f.db_user INTO owner_row FROM walltrack.fleet_clients AS f WHERE f.id = client_id;
        RAISE EXCEPTION 'client % is reported by % (database user %), not by % (%)', client_id,
            owner_row.reported_by, owner_row.db_user, reporter, session_user USING ERRCODE = 'WT001',
            HINT = 'Each client reports under an id of its own: make a new one (a UUID) per process.';
    END IF;
END;
$$;

-- A client leaving (its LiveConfig stopped): true when it was registered. Only its reporter may.
CREATE FUNCTION walltrack.fleet_leave(client_id UUID, actor TEXT DEFAULT NULL) RETURNS BOOLEAN
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    reporter TEXT := left(coalesce(nullif(actor, ''), walltrack.config_actor()), 100);
    owner_row RECORD;
BEGIN
    SELECT f.reported_by, f.db_user INTO owner_row FROM walltrack.fleet_clients AS f WHERE f.id = client_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF owner_row.reported_by <> reporter OR owner_row.db_user <> session_user THEN
        RAISE EXCEPTION 'client % is reported by % (database user %), not by % (%)', client_id,
            owner_row.reported_by, owner_row.db_user, reporter, session_user USING ERRCODE = 'WT001',
            HINT = 'Only the client itself leaves; a client not heard from for 24 h is removed.';
    END IF;
    DELETE FROM walltrack.fleet_clients WHERE id = client_id;
    RETURN true;
END;
$$;

-- ---------- who may do what ----------

-- Reading: anyone who may use schema walltrack. Writing: nobody but the owner (through the functions).
-- Default privileges (ALTER DEFAULT PRIVILEGES … GRANT ALL ON TABLES) may have granted more: revoked.
DO $$
DECLARE
    granted RECORD;
BEGIN
    FOR granted IN
        SELECT DISTINCT acl.grantee FROM pg_class AS c, aclexplode(c.relacl) AS acl
        WHERE c.oid = 'walltrack.fleet_clients'::regclass AND acl.grantee <> c.relowner
    LOOP
        EXECUTE format('REVOKE ALL ON walltrack.fleet_clients FROM %s',
                       CASE WHEN granted.grantee = 0 THEN 'PUBLIC' ELSE granted.grantee::regrole::text END);
    END LOOP;
END
$$;
GRANT SELECT ON walltrack.fleet_clients TO PUBLIC;

-- Every client reports, whatever its role: said here, not left to the default.
REVOKE ALL ON FUNCTION walltrack.fleet_report(UUID, TEXT, TEXT, INT, TEXT, TEXT, TEXT[], REAL, JSONB, TEXT),
    walltrack.fleet_leave(UUID, TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION walltrack.fleet_report(UUID, TEXT, TEXT, INT, TEXT, TEXT, TEXT[], REAL, JSONB, TEXT),
    walltrack.fleet_leave(UUID, TEXT) TO PUBLIC;
