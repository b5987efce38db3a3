-- ============================================
-- V11: hardening: finite values, printable names, one commit-ordered lock, an activation log,
-- activation bound to the reviewed version, an audit log only its trigger can write, fixed search_path
-- ============================================
-- Runs as-is: psql -v ON_ERROR_STOP=1 -1 -f V11__config_hardening.sql
-- Run it as the owner of the walltrack tables (or a superuser): the log writers become theirs.
-- What it changes, for every client:
--   * no numeric setting accepts NaN (Infinity never fits a DECIMAL(p,s)); existing rows are kept as
--     history (NOT VALID), a NaN row may still be archived, but never goes live again;
--   * names need a visible character and no control characters;
--   * every write to a config table, and every transition, takes one transaction lock first, so
--     transitions never deadlock whatever the order of domains, and commit in the order they lock;
--   * walltrack.config_activations records every activation with a sequence number that grows in
--     commit order; rollback goes to the archived row that was live most recently;
--   * activate_config takes the draft version that was reviewed and refuses a draft changed since;
--   * only the triggers write the audit log and the activation log; each audit row records the real
--     database user (db_user) beside the declared actor; name and description count as changed fields;
--   * every function in schema walltrack runs with search_path = pg_catalog, pg_temp.
-- squawk-ignore-file ban-drop-function, prefer-robust-stmts, require-concurrent-index-creation, adding-field-with-default, prefer-bigint-over-int, prefer-text-field, prefer-identity
-- (why: the file runs in one transaction, where CONCURRENTLY cannot run and IF NOT EXISTS would only
--  hide a bad state; the tables hold a handful of rows, so the locks last microseconds; activate_config
--  and rollback_config change their arguments, which needs a drop and a create.)

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- ---------- one lock for every writer ----------

-- Every config write and transition takes this lock first, until its transaction ends: the row lock of
-- trading's default row, a row nothing ever writes. One lock cannot be taken in two orders, so nothing
-- deadlocks on it, and activations commit in the order they take it, which makes the activation sequence
-- commit-ordered. Taking it needs UPDATE on trading_config, so a role that may only read cannot hold up
-- the writers (an advisory lock could be taken by any role that can connect).
CREATE FUNCTION walltrack.lock_config_writes() RETURNS VOID
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT FROM walltrack.trading_config WHERE status = 'default' FOR UPDATE
$$;

-- Statement-level, before any row is touched: plain SQL takes the lock before its first row lock too.
CREATE FUNCTION walltrack.serialize_config_writes() RETURNS TRIGGER
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM walltrack.lock_config_writes();
    RETURN NULL;
END;
$$;

-- ---------- the activation log ----------

CREATE TABLE walltrack.config_activations (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    config_table TEXT NOT NULL,
    config_id UUID NOT NULL,
    version INTEGER NOT NULL,
    performed_by TEXT NOT NULL,
    db_user TEXT NOT NULL,
    reason TEXT,
    activated_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX idx_config_activations_row ON walltrack.config_activations (config_table, config_id, seq);
COMMENT ON TABLE walltrack.config_activations IS 'Every activation and rollback, in commit order (seq); written only by the config tables'' triggers.';
COMMENT ON COLUMN walltrack.config_activations.seq IS 'Activation sequence: grows with every activation, in commit order, across all domains.';
COMMENT ON COLUMN walltrack.config_activations.config_table IS 'The config table, e.g. risk_config.';
COMMENT ON COLUMN walltrack.config_activations.config_id IS 'The row that went live.';
COMMENT ON COLUMN walltrack.config_activations.version IS 'Its version once live.';
COMMENT ON COLUMN walltrack.config_activations.performed_by IS 'Who activated it, as declared (walltrack.actor), else the database user.';
COMMENT ON COLUMN walltrack.config_activations.db_user IS 'The database user of the session that activated it.';
COMMENT ON COLUMN walltrack.config_activations.reason IS 'Why, as given.';
COMMENT ON COLUMN walltrack.config_activations.activated_at IS 'When it went live.';
GRANT SELECT ON walltrack.config_activations TO PUBLIC;

-- Rows live before V11 get their activations from what is known: in the order of their last 'activate'
-- audit row (V9 wrote those in commit order within a table, under its per-table lock), rows without one
-- (live since V8) first, and the active row last.
INSERT INTO walltrack.config_activations (config_table, config_id, version, performed_by, db_user, reason, activated_at)
SELECT tbl, id, version, coalesce(updated_by, 'system'), current_user, 'recorded by V11 from the audit log', updated_at
FROM (
    SELECT 'trading_config' AS tbl, id, version, updated_by, updated_at, status FROM walltrack.trading_config
    UNION ALL SELECT 'scoring_config', id, version, updated_by, updated_at, status FROM walltrack.scoring_config
    UNION ALL SELECT 'discovery_config', id, version, updated_by, updated_at, status FROM walltrack.discovery_config
    UNION ALL SELECT 'cluster_config', id, version, updated_by, updated_at, status FROM walltrack.cluster_config
    UNION ALL SELECT 'risk_config', id, version, updated_by, updated_at, status FROM walltrack.risk_config
    UNION ALL SELECT 'exit_config', id, version, updated_by, updated_at, status FROM walltrack.exit_config
    UNION ALL SELECT 'api_config', id, version, updated_by, updated_at, status FROM walltrack.api_config
) AS live
WHERE status IN ('active', 'archived')
ORDER BY status = 'active',
         (SELECT max(log.id) FROM walltrack.config_audit_log AS log
          WHERE log.config_table = live.tbl AND log.config_id = live.id AND log.action = 'activate') NULLS FIRST,
         updated_at, version;

-- SECURITY DEFINER: the log is written as its owner, whoever activates; nobody else may write it.
CREATE FUNCTION walltrack.record_config_activation() RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_TABLE_SCHEMA <> 'walltrack' OR TG_TABLE_NAME NOT IN ('trading_config', 'scoring_config', 'discovery_config',
                                                                'cluster_config', 'risk_config', 'exit_config', 'api_config') THEN
        RAISE EXCEPTION '% records the walltrack config tables only, not %.%', TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'WT001', HINT = 'Write the config tables; their triggers record the change.';
    END IF;
    INSERT INTO walltrack.config_activations (config_table, config_id, version, performed_by, db_user, reason)
    VALUES (TG_TABLE_NAME, NEW.id, NEW.version, walltrack.config_actor(), session_user,
            nullif(current_setting('walltrack.reason', true), ''));
    RETURN NULL;
END;
$$;

-- ---------- the audit log: written by its trigger only ----------

ALTER TABLE walltrack.config_audit_log ADD COLUMN db_user TEXT, ADD COLUMN db_client_addr INET;
COMMENT ON COLUMN walltrack.config_audit_log.db_user IS 'The database user of the session that made the change (performed_by is the declared actor).';
COMMENT ON COLUMN walltrack.config_audit_log.db_client_addr IS 'The address the database saw the session come from (source_ip is the declared one); NULL over a Unix socket.';

-- Only the log writers, running as the log's owner from inside a trigger, may insert: a role granted
-- INSERT by mistake, or the owner typing an INSERT, cannot forge a row or reserve future ids.
CREATE FUNCTION walltrack.refuse_direct_log_write() RETURNS TRIGGER
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF pg_trigger_depth() < 2
       OR (SELECT relowner FROM pg_class WHERE oid = TG_RELID) IS DISTINCT FROM (SELECT oid FROM pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'rows of %.% are written by the config tables'' triggers only', TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'WT001', HINT = 'Change a config table; its trigger records the change.';
    END IF;
    RETURN NEW;
END;
$$;

CREATE FUNCTION walltrack.refuse_log_change() RETURNS TRIGGER
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION '% on %.% is refused: the log is append-only', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'WT001', HINT = 'Log rows are never changed or removed.';
END;
$$;

CREATE TRIGGER trg_config_audit_log_origin
    BEFORE INSERT ON walltrack.config_audit_log
    FOR EACH ROW EXECUTE FUNCTION walltrack.refuse_direct_log_write();

CREATE TRIGGER trg_config_activations_origin
    BEFORE INSERT ON walltrack.config_activations
    FOR EACH ROW EXECUTE FUNCTION walltrack.refuse_direct_log_write();

CREATE TRIGGER trg_config_activations_append_only
    BEFORE UPDATE OR DELETE ON walltrack.config_activations
    FOR EACH ROW EXECUTE FUNCTION walltrack.refuse_log_change();

CREATE TRIGGER trg_config_activations_no_truncate
    BEFORE TRUNCATE ON walltrack.config_activations
    FOR EACH STATEMENT EXECUTE FUNCTION walltrack.refuse_log_change();

-- The audit trigger of V9, now: run as the log's owner, record the session's real database user, count
-- name and description as changed fields, and call an insert a restore only when it is one (a copy of an
-- archived row's settings), whatever a client sets walltrack.audit_action to.
CREATE OR REPLACE FUNCTION walltrack.audit_config_change() RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old_row JSONB := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
    new_row JSONB := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
    lifecycle_columns TEXT[] := ARRAY['id', 'name', 'status', 'version', 'description',
                                      'created_at', 'updated_at', 'created_by', 'updated_by'];
    is_restore BOOLEAN := false;
BEGIN
    -- It runs as the log's owner: never for a table (or view) that some role attached it to itself.
    IF TG_TABLE_SCHEMA <> 'walltrack' OR TG_TABLE_NAME NOT IN ('trading_config', 'scoring_config', 'discovery_config',
                                                                'cluster_config', 'risk_config', 'exit_config', 'api_config') THEN
        RAISE EXCEPTION '% records the walltrack config tables only, not %.%', TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'WT001', HINT = 'Write the config tables; their triggers record the change.';
    END IF;
    IF TG_OP = 'INSERT' AND current_setting('walltrack.audit_action', true) = 'restore' THEN
        EXECUTE format('SELECT EXISTS (SELECT FROM %I.%I AS t WHERE t.status = ''archived'' AND to_jsonb(t) - $2 = $1 - $2)',
                       TG_TABLE_SCHEMA, TG_TABLE_NAME)
            INTO is_restore USING new_row, lifecycle_columns;
    END IF;
    INSERT INTO walltrack.config_audit_log
        (config_table, config_id, action, old_values, new_values, changed_fields,
         reason, performed_by, source_ip, user_agent, db_user, db_client_addr)
    VALUES (
        TG_TABLE_NAME,
        (coalesce(new_row, old_row) ->> 'id')::uuid,
        CASE TG_OP
            WHEN 'INSERT' THEN CASE WHEN is_restore THEN 'restore' ELSE 'create' END
            WHEN 'DELETE' THEN 'delete'
            ELSE CASE WHEN new_row ->> 'status' = old_row ->> 'status' THEN 'update'
                      WHEN new_row ->> 'status' = 'active' THEN 'activate'
                      ELSE 'archive' END
        END,
        old_row,
        new_row,
        CASE WHEN TG_OP = 'UPDATE' THEN walltrack.config_changed_fields(old_row, new_row, false) END,
        nullif(current_setting('walltrack.reason', true), ''),
        walltrack.config_actor(),
        left(coalesce(nullif(current_setting('walltrack.source_ip', true), ''), host(inet_client_addr())), 45),
        coalesce(nullif(current_setting('walltrack.user_agent', true), ''), nullif(current_setting('application_name'), '')),
        session_user,
        inet_client_addr()
    );
    RETURN NULL;
END;
$$;

-- Nobody attaches the owner's log writers to a table of their own (EXECUTE is checked when a trigger is
-- created, so the config tables' triggers keep firing for everyone).
REVOKE EXECUTE ON FUNCTION walltrack.audit_config_change(), walltrack.record_config_activation() FROM PUBLIC;

-- The writers belong to the logs' owner (the one the origin check expects), and nobody else may write
-- the logs or move their id sequences: whatever was granted before is revoked, and kept here so that U11
-- can grant it back.
CREATE TABLE walltrack.config_revoked_grants (
    object_name TEXT NOT NULL,
    privileges TEXT NOT NULL,
    grantee TEXT NOT NULL
);
COMMENT ON TABLE walltrack.config_revoked_grants IS 'Write privileges on the logs that V11 revoked (object_name: TABLE or SEQUENCE and its name); U11 grants them back.';
DO $$
DECLARE
    owner_name TEXT := (SELECT relowner::regrole::text FROM pg_class WHERE oid = 'walltrack.config_audit_log'::regclass);
    grant_row RECORD;
BEGIN
    EXECUTE format('ALTER FUNCTION walltrack.audit_config_change() OWNER TO %s', owner_name);
    EXECUTE format('ALTER FUNCTION walltrack.record_config_activation() OWNER TO %s', owner_name);
    EXECUTE format('ALTER TABLE walltrack.config_activations OWNER TO %s', owner_name);
    FOR grant_row IN
        SELECT DISTINCT c.oid::regclass AS rel, c.relkind, acl.grantee
        FROM pg_class AS c, aclexplode(c.relacl) AS acl
        WHERE c.oid IN ('walltrack.config_audit_log'::regclass, 'walltrack.config_audit_log_id_seq'::regclass,
                        'walltrack.config_activations'::regclass, 'walltrack.config_activations_seq_seq'::regclass)
          AND acl.grantee <> c.relowner
          AND acl.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'USAGE')
    LOOP
        INSERT INTO walltrack.config_revoked_grants
        SELECT CASE WHEN grant_row.relkind = 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END || grant_row.rel::text,
               string_agg(acl.privilege_type, ', ' ORDER BY acl.privilege_type),
               CASE WHEN grant_row.grantee = 0 THEN 'PUBLIC' ELSE grant_row.grantee::regrole::text END
        FROM pg_class AS c, aclexplode(c.relacl) AS acl
        WHERE c.oid = grant_row.rel AND acl.grantee = grant_row.grantee
          AND acl.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'USAGE');
        EXECUTE format('REVOKE %s %s FROM %s',
                       CASE WHEN grant_row.relkind = 'S' THEN 'USAGE, UPDATE ON SEQUENCE' ELSE 'INSERT, UPDATE, DELETE, TRUNCATE ON TABLE' END,
                       grant_row.rel,
                       CASE WHEN grant_row.grantee = 0 THEN 'PUBLIC' ELSE grant_row.grantee::regrole::text END);
    END LOOP;
END
$$;

-- ---------- transitions ----------

-- As in V9, but every transition takes the one lock of lock_config_writes instead of a lock per table.
CREATE OR REPLACE FUNCTION walltrack.config_begin(domain TEXT, actor TEXT, reason TEXT) RETURNS REGCLASS
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tbl REGCLASS := walltrack.config_table(domain);
BEGIN
    IF actor IS NOT NULL THEN
        PERFORM set_config('walltrack.actor', actor, true);
    END IF;
    IF reason IS NOT NULL THEN
        PERFORM set_config('walltrack.reason', reason, true);
    END IF;
    PERFORM walltrack.lock_config_writes();
    RETURN tbl;
END;
$$;

-- As in V9, and a value with more decimals than its column keeps is refused instead of rounded.
CREATE OR REPLACE FUNCTION walltrack.edit_config(domain TEXT, draft_id UUID, expected_version INT, changes JSONB,
                                                 actor TEXT DEFAULT NULL, reason TEXT DEFAULT NULL)
RETURNS INT LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tbl REGCLASS := walltrack.config_begin(domain, actor, reason);
    row_status walltrack.config_status := walltrack.config_lock_row(tbl, draft_id);
    editable TEXT[] := walltrack.config_setting_columns(tbl) || ARRAY['name', 'description'];
    current_version INT;
    field TEXT;
    field_type TEXT;
    field_typmod INT;
    field_scale INT;
    cols TEXT;
BEGIN
    IF jsonb_typeof(changes) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'changes must be a JSON object of column to value' USING ERRCODE = 'WT004';
    END IF;
    FOR field IN SELECT jsonb_object_keys(changes) LOOP
        IF NOT field = ANY (editable) THEN
            RAISE EXCEPTION 'unknown field % for %', field, tbl USING ERRCODE = 'WT004', COLUMN = field,
                HINT = 'Editable fields are ' || array_to_string(editable, ', ') || '.';
        END IF;
        SELECT format_type(atttypid, atttypmod), CASE WHEN atttypid = 'numeric'::regtype THEN atttypmod END
            INTO field_type, field_typmod
        FROM pg_attribute WHERE attrelid = tbl AND attname = field;
        BEGIN
            EXECUTE format('SELECT ($1 ->> %L)::%s', field, field_type) USING changes;
        EXCEPTION WHEN data_exception THEN
            RAISE EXCEPTION 'invalid value for %: %', field, SQLERRM USING ERRCODE = 'invalid_text_representation',
                COLUMN = field, TABLE = tbl::text;
        END;
        -- DECIMAL(p,s) would round it silently: 12.345 into DECIMAL(5,2) is stored as 12.35.
        IF field_typmod > 4 AND jsonb_typeof(changes -> field) IN ('number', 'string') THEN
            field_scale := (field_typmod - 4) & 65535;
            IF scale(trim_scale((changes ->> field)::numeric)) > field_scale THEN
                RAISE EXCEPTION 'invalid value for %: % has more decimals than the % it keeps',
                    field, changes ->> field, field_scale
                    USING ERRCODE = 'invalid_text_representation', COLUMN = field, TABLE = tbl::text;
            END IF;
        END IF;
    END LOOP;
    IF row_status <> 'draft' THEN
        RAISE EXCEPTION 'the % row % of % is read-only', row_status, draft_id, tbl USING ERRCODE = 'WT001',
            HINT = 'Only drafts are edited: clone this row into a draft first.';
    END IF;
    EXECUTE format('SELECT version FROM %s WHERE id = $1', tbl) INTO current_version USING draft_id;
    IF current_version <> expected_version THEN
        RAISE EXCEPTION 'draft % of % is at version %, not %', draft_id, tbl, current_version, expected_version
            USING ERRCODE = 'WT002', HINT = 'Someone changed it since you read it: reload it and apply your change again.';
    END IF;
    SELECT string_agg(quote_ident(k), ', ') INTO cols FROM jsonb_object_keys(changes) AS k;
    IF cols IS NULL THEN
        RETURN current_version;
    END IF;
    EXECUTE format('UPDATE %s AS t SET (%s) = (SELECT %s FROM jsonb_populate_record(t, $1) AS r) WHERE id = $2 RETURNING version',
                   tbl, cols, (SELECT string_agg('r.' || quote_ident(k), ', ') FROM jsonb_object_keys(changes) AS k))
        INTO current_version USING changes, draft_id;
    RETURN current_version;
END;
$$;

-- The draft goes live only at the version the caller reviewed: an edit made since is refused.
DROP FUNCTION walltrack.activate_config(TEXT, UUID, TEXT, TEXT);
CREATE FUNCTION walltrack.activate_config(domain TEXT, draft_id UUID, expected_version INT,
                                          actor TEXT DEFAULT NULL, reason TEXT DEFAULT NULL)
RETURNS UUID LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tbl REGCLASS := walltrack.config_begin(domain, actor, reason);
    row_status walltrack.config_status := walltrack.config_lock_row(tbl, draft_id);
    current_version INT;
BEGIN
    IF row_status <> 'draft' THEN
        RAISE EXCEPTION 'row % of % is %, only a draft can be activated', draft_id, tbl, row_status
            USING ERRCODE = 'WT001',
            HINT = CASE row_status WHEN 'archived' THEN 'Roll back (walltrack.rollback_config) or restore it as a draft first.'
                                   WHEN 'active' THEN 'It is already active.'
                                   ELSE 'Clone the defaults into a draft and activate that.' END;
    END IF;
    IF expected_version IS NULL THEN
        RAISE EXCEPTION 'activating row % of % needs the version you reviewed', draft_id, tbl USING ERRCODE = 'WT001',
            HINT = 'Pass the draft''s version as expected_version: what goes live is what you saw.';
    END IF;
    EXECUTE format('SELECT version FROM %s WHERE id = $1', tbl) INTO current_version USING draft_id;
    IF current_version <> expected_version THEN
        RAISE EXCEPTION 'draft changed since you reviewed it (v% → v%); review again', expected_version, current_version
            USING ERRCODE = 'WT002', HINT = 'Show the diff again and activate the version you see.';
    END IF;
    EXECUTE format('UPDATE %s SET status = ''archived'' WHERE status = ''active''', tbl);
    EXECUTE format('UPDATE %s SET status = ''active'' WHERE id = $1', tbl) USING draft_id;
    RETURN draft_id;
END;
$$;

-- The archived row that was live most recently (by activation sequence, never by a transaction's clock):
-- what a rollback of the domain makes live again; NULL when nothing is archived.
CREATE FUNCTION walltrack.config_rollback_target(domain TEXT) RETURNS UUID
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tbl REGCLASS := walltrack.config_table(domain);
    target UUID;
BEGIN
    EXECUTE format('SELECT t.id FROM %s AS t LEFT JOIN LATERAL (SELECT max(a.seq) AS seq FROM walltrack.config_activations AS a'
                   ' WHERE a.config_table = $1 AND a.config_id = t.id) AS last ON true'
                   ' WHERE t.status = ''archived'' ORDER BY last.seq DESC NULLS LAST, t.updated_at DESC, t.id LIMIT 1', tbl)
        INTO target USING domain || '_config';
    RETURN target;
END;
$$;

-- That row goes live again. expected_id, when given, is the row the caller reviewed: another target is refused.
DROP FUNCTION walltrack.rollback_config(TEXT, TEXT, TEXT);
CREATE FUNCTION walltrack.rollback_config(domain TEXT, actor TEXT DEFAULT NULL, reason TEXT DEFAULT NULL,
                                          expected_id UUID DEFAULT NULL)
RETURNS UUID LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tbl REGCLASS := walltrack.config_begin(domain, actor, reason);
    previous_id UUID := walltrack.config_rollback_target(domain);
BEGIN
    IF previous_id IS NULL THEN
        RAISE EXCEPTION 'nothing to roll back to in %: no archived config', tbl USING ERRCODE = 'WT001',
            HINT = 'A rollback needs an earlier active config; activate a draft instead.';
    END IF;
    IF expected_id IS NOT NULL AND previous_id <> expected_id THEN
        RAISE EXCEPTION 'the rollback target of % changed since you reviewed it (% → %); review again', tbl, expected_id, previous_id
            USING ERRCODE = 'WT002', HINT = 'Someone activated or rolled back in the meantime.';
    END IF;
    PERFORM walltrack.config_lock_row(tbl, previous_id);
    EXECUTE format('UPDATE %s SET status = ''archived'' WHERE status = ''active''', tbl);
    EXECUTE format('UPDATE %s SET status = ''active'' WHERE id = $1', tbl) USING previous_id;
    RETURN previous_id;
END;
$$;

-- What V10 announces, now with the activation sequence (recorded by the activation trigger, which fires first).
CREATE OR REPLACE FUNCTION walltrack.notify_config_live() RETURNS TRIGGER
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pg_notify('walltrack_config', json_build_object(
        'domain', regexp_replace(TG_TABLE_NAME, '_config$', ''),
        'id', NEW.id,
        'version', NEW.version,
        'activation', (SELECT max(seq) FROM walltrack.config_activations
                       WHERE config_table = TG_TABLE_NAME AND config_id = NEW.id))::text);
    RETURN NULL;
END;
$$;

-- ---------- every other function: a fixed search_path ----------

ALTER FUNCTION walltrack.ensure_single_active_config() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION walltrack.increment_config_version() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION walltrack.config_actor() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION walltrack.config_table(TEXT) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION walltrack.config_setting_columns(REGCLASS) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION walltrack.config_changed_fields(JSONB, JSONB, BOOLEAN) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION walltrack.valid_drawdown_tiers(JSONB) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION walltrack.guard_config_row() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION walltrack.check_config_has_active() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION walltrack.refuse_config_truncate() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION walltrack.refuse_audit_change() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION walltrack.config_lock_row(REGCLASS, UUID) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION walltrack.clone_config(TEXT, UUID, TEXT, TEXT, TEXT, BOOLEAN) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION walltrack.restore_config(TEXT, UUID, TEXT, TEXT, TEXT) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION walltrack.discard_config(TEXT, UUID, TEXT, TEXT) SET search_path = pg_catalog, pg_temp;

-- ---------- per table: finite values, printable names, the lock, the activation log ----------

-- ---------- walltrack.trading_config ----------
ALTER TABLE walltrack.trading_config
    ADD CONSTRAINT chk_base_position_pct_finite CHECK (status = 'archived' OR base_position_pct <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_max_position_sol_finite CHECK (status = 'archived' OR max_position_sol <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_min_position_sol_finite CHECK (status = 'archived' OR min_position_sol <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_high_conviction_multiplier_finite CHECK (status = 'archived' OR high_conviction_multiplier <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_risk_per_trade_pct_finite CHECK (status = 'archived' OR risk_per_trade_pct <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_daily_loss_limit_pct_finite CHECK (status = 'archived' OR daily_loss_limit_pct <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_max_concentration_token_pct_finite CHECK (status = 'archived' OR max_concentration_token_pct <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_max_concentration_cluster_pct_finite CHECK (status = 'archived' OR max_concentration_cluster_pct <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_score_threshold_finite CHECK (status = 'archived' OR score_threshold <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_high_conviction_threshold_finite CHECK (status = 'archived' OR high_conviction_threshold <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_name_text CHECK (status = 'archived' OR (name !~ '[\u0001-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]' AND name ~ '[^ \u00a0\u00ad\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u3000\ufeff]')) NOT VALID;

CREATE TRIGGER trg_trading_config_serialize
    BEFORE INSERT OR UPDATE OR DELETE ON walltrack.trading_config
    FOR EACH STATEMENT EXECUTE FUNCTION walltrack.serialize_config_writes();

CREATE TRIGGER trg_trading_config_activation
    AFTER UPDATE OF status ON walltrack.trading_config
    FOR EACH ROW WHEN (NEW.status = 'active' AND OLD.status <> 'active')
    EXECUTE FUNCTION walltrack.record_config_activation();

-- ---------- walltrack.scoring_config ----------
ALTER TABLE walltrack.scoring_config
    ADD CONSTRAINT chk_wallet_score_weight_finite CHECK (status = 'archived' OR wallet_score_weight <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_timing_score_weight_finite CHECK (status = 'archived' OR timing_score_weight <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_market_score_weight_finite CHECK (status = 'archived' OR market_score_weight <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_cluster_score_weight_finite CHECK (status = 'archived' OR cluster_score_weight <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_wallet_win_rate_weight_finite CHECK (status = 'archived' OR wallet_win_rate_weight <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_wallet_avg_pnl_weight_finite CHECK (status = 'archived' OR wallet_avg_pnl_weight <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_wallet_consistency_weight_finite CHECK (status = 'archived' OR wallet_consistency_weight <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_timing_freshness_bonus_finite CHECK (status = 'archived' OR timing_freshness_bonus <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_market_liquidity_threshold_finite CHECK (status = 'archived' OR market_liquidity_threshold <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_market_volume_threshold_finite CHECK (status = 'archived' OR market_volume_threshold <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_cluster_min_sync_ratio_finite CHECK (status = 'archived' OR cluster_min_sync_ratio <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_cluster_amplification_factor_finite CHECK (status = 'archived' OR cluster_amplification_factor <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_name_text CHECK (status = 'archived' OR (name !~ '[\u0001-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]' AND name ~ '[^ \u00a0\u00ad\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u3000\ufeff]')) NOT VALID;

CREATE TRIGGER trg_scoring_config_serialize
    BEFORE INSERT OR UPDATE OR DELETE ON walltrack.scoring_config
    FOR EACH STATEMENT EXECUTE FUNCTION walltrack.serialize_config_writes();

CREATE TRIGGER trg_scoring_config_activation
    AFTER UPDATE OF status ON walltrack.scoring_config
    FOR EACH ROW WHEN (NEW.status = 'active' AND OLD.status <> 'active')
    EXECUTE FUNCTION walltrack.record_config_activation();

-- ---------- walltrack.discovery_config ----------
ALTER TABLE walltrack.discovery_config
    ADD CONSTRAINT chk_min_win_rate_finite CHECK (status = 'archived' OR min_win_rate <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_min_avg_pnl_pct_finite CHECK (status = 'archived' OR min_avg_pnl_pct <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_max_avg_loss_pct_finite CHECK (status = 'archived' OR max_avg_loss_pct <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_decay_threshold_finite CHECK (status = 'archived' OR decay_threshold <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_pump_volume_spike_threshold_finite CHECK (status = 'archived' OR pump_volume_spike_threshold <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_pump_price_spike_threshold_finite CHECK (status = 'archived' OR pump_price_spike_threshold <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_name_text CHECK (status = 'archived' OR (name !~ '[\u0001-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]' AND name ~ '[^ \u00a0\u00ad\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u3000\ufeff]')) NOT VALID;

CREATE TRIGGER trg_discovery_config_serialize
    BEFORE INSERT OR UPDATE OR DELETE ON walltrack.discovery_config
    FOR EACH STATEMENT EXECUTE FUNCTION walltrack.serialize_config_writes();

CREATE TRIGGER trg_discovery_config_activation
    AFTER UPDATE OF status ON walltrack.discovery_config
    FOR EACH ROW WHEN (NEW.status = 'active' AND OLD.status <> 'active')
    EXECUTE FUNCTION walltrack.record_config_activation();

-- ---------- walltrack.cluster_config ----------
ALTER TABLE walltrack.cluster_config
    ADD CONSTRAINT chk_similarity_threshold_finite CHECK (status = 'archived' OR similarity_threshold <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_sync_token_overlap_threshold_finite CHECK (status = 'archived' OR sync_token_overlap_threshold <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_amplification_max_boost_finite CHECK (status = 'archived' OR amplification_max_boost <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_name_text CHECK (status = 'archived' OR (name !~ '[\u0001-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]' AND name ~ '[^ \u00a0\u00ad\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u3000\ufeff]')) NOT VALID;

CREATE TRIGGER trg_cluster_config_serialize
    BEFORE INSERT OR UPDATE OR DELETE ON walltrack.cluster_config
    FOR EACH STATEMENT EXECUTE FUNCTION walltrack.serialize_config_writes();

CREATE TRIGGER trg_cluster_config_activation
    AFTER UPDATE OF status ON walltrack.cluster_config
    FOR EACH ROW WHEN (NEW.status = 'active' AND OLD.status <> 'active')
    EXECUTE FUNCTION walltrack.record_config_activation();

-- ---------- walltrack.risk_config ----------
ALTER TABLE walltrack.risk_config
    ADD CONSTRAINT chk_circuit_breaker_loss_threshold_finite CHECK (status = 'archived' OR circuit_breaker_loss_threshold <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_max_drawdown_pct_finite CHECK (status = 'archived' OR max_drawdown_pct <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_retry_delay_multiplier_finite CHECK (status = 'archived' OR retry_delay_multiplier <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_emergency_exit_threshold_pct_finite CHECK (status = 'archived' OR emergency_exit_threshold_pct <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_name_text CHECK (status = 'archived' OR (name !~ '[\u0001-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]' AND name ~ '[^ \u00a0\u00ad\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u3000\ufeff]')) NOT VALID;

CREATE TRIGGER trg_risk_config_serialize
    BEFORE INSERT OR UPDATE OR DELETE ON walltrack.risk_config
    FOR EACH STATEMENT EXECUTE FUNCTION walltrack.serialize_config_writes();

CREATE TRIGGER trg_risk_config_activation
    AFTER UPDATE OF status ON walltrack.risk_config
    FOR EACH ROW WHEN (NEW.status = 'active' AND OLD.status <> 'active')
    EXECUTE FUNCTION walltrack.record_config_activation();

-- ---------- walltrack.exit_config ----------
ALTER TABLE walltrack.exit_config
    ADD CONSTRAINT chk_stagnation_threshold_pct_finite CHECK (status = 'archived' OR stagnation_threshold_pct <> 'NaN') NOT VALID,
    ADD CONSTRAINT chk_name_text CHECK (status = 'archived' OR (name !~ '[\u0001-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]' AND name ~ '[^ \u00a0\u00ad\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u3000\ufeff]')) NOT VALID;

CREATE TRIGGER trg_exit_config_serialize
    BEFORE INSERT OR UPDATE OR DELETE ON walltrack.exit_config
    FOR EACH STATEMENT EXECUTE FUNCTION walltrack.serialize_config_writes();

CREATE TRIGGER trg_exit_config_activation
    AFTER UPDATE OF status ON walltrack.exit_config
    FOR EACH ROW WHEN (NEW.status = 'active' AND OLD.status <> 'active')
    EXECUTE FUNCTION walltrack.record_config_activation();

-- ---------- walltrack.api_config ----------
ALTER TABLE walltrack.api_config
    ADD CONSTRAINT chk_name_text CHECK (status = 'archived' OR (name !~ '[\u0001-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]' AND name ~ '[^ \u00a0\u00ad\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u3000\ufeff]')) NOT VALID;

CREATE TRIGGER trg_api_config_serialize
    BEFORE INSERT OR UPDATE OR DELETE ON walltrack.api_config
    FOR EACH STATEMENT EXECUTE FUNCTION walltrack.serialize_config_writes();

CREATE TRIGGER trg_api_config_activation
    AFTER UPDATE OF status ON walltrack.api_config
    FOR EACH ROW WHEN (NEW.status = 'active' AND OLD.status <> 'active')
    EXECUTE FUNCTION walltrack.record_config_activation();
