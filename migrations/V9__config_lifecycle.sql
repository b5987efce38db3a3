-- ============================================
-- V9: the configuration lifecycle, enforced by PostgreSQL for every client
-- ============================================
-- Runs as-is: psql -v ON_ERROR_STOP=1 -1 -f V9__config_lifecycle.sql
-- Rules (whoever writes: this library, psql, a table editor):
--   default  the presets; read-only, never deleted, exactly one per table
--   draft    the only editable status; may be deleted; many per table, each with its own name
--   active   what the bot uses; read-only; exactly one per table at every commit
--   archived a former active; read-only; restorable
-- Allowed status changes: draft -> active, active -> archived, archived -> active (rollback).
-- Plain SQL names its actor and reason for the audit trail with, inside its transaction:
--   SELECT set_config('walltrack.actor', 'alice', true), set_config('walltrack.reason', 'why', true);
-- Errors: WT001 rule broken (the hint says what to do), WT002 stale version, WT003 not found,
-- WT004 unknown field; invalid values raise check_violation (23514) on constraint chk_<field>.
-- squawk-ignore-file constraint-missing-not-valid, require-concurrent-index-creation, prefer-robust-stmts
-- (why: the config tables hold a handful of rows, so validating a CHECK or building an index under lock
--  takes microseconds; the file runs in one transaction, so IF NOT EXISTS would only hide a bad state.)

-- On a live database, fail fast rather than queue behind a long transaction and block the bot's reads.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- ---------- helpers ----------

-- Who acts: the caller's walltrack.actor setting, else the database user.
CREATE FUNCTION walltrack.config_actor() RETURNS TEXT
LANGUAGE sql STABLE AS $$
    SELECT left(coalesce(nullif(current_setting('walltrack.actor', true), ''), session_user), 100)
$$;

-- The config table of a domain (trading, scoring, discovery, cluster, risk, exit, api).
CREATE FUNCTION walltrack.config_table(domain TEXT) RETURNS REGCLASS
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF domain IS NULL OR domain NOT IN ('trading', 'scoring', 'discovery', 'cluster', 'risk', 'exit', 'api') THEN
        RAISE EXCEPTION 'unknown config domain %', quote_nullable(domain) USING ERRCODE = 'WT003',
            HINT = 'Domains are trading, scoring, discovery, cluster, risk, exit and api.';
    END IF;
    RETURN format('walltrack.%I', domain || '_config')::regclass;
END;
$$;

-- The setting columns of a config table, in table order: every column but the lifecycle ones.
CREATE FUNCTION walltrack.config_setting_columns(tbl REGCLASS) RETURNS TEXT[]
LANGUAGE sql STABLE AS $$
    SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute
    WHERE attrelid = tbl AND attnum > 0 AND NOT attisdropped
      AND attname NOT IN ('id', 'name', 'status', 'version', 'description',
                          'created_at', 'updated_at', 'created_by', 'updated_by')
$$;

-- Columns whose values differ between two row snapshots, lifecycle bookkeeping left out.
CREATE FUNCTION walltrack.config_changed_fields(old_row JSONB, new_row JSONB, settings_only BOOLEAN)
RETURNS TEXT[] LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(n.key ORDER BY n.key), '{}')
    FROM jsonb_each(new_row) AS n JOIN jsonb_each(old_row) AS o USING (key)
    WHERE n.value IS DISTINCT FROM o.value
      AND n.key NOT IN ('id', 'status', 'version', 'created_at', 'updated_at', 'created_by', 'updated_by')
      AND NOT (settings_only AND n.key IN ('name', 'description'))
$$;

-- A non-empty array of {threshold_pct, size_reduction_pct}, numbers within 0-100,
-- thresholds rising and reductions non-decreasing.
CREATE FUNCTION walltrack.valid_drawdown_tiers(tiers JSONB) RETURNS BOOLEAN
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    tier JSONB;
    threshold NUMERIC;
    reduction NUMERIC;
    last_threshold NUMERIC;
    last_reduction NUMERIC;
BEGIN
    IF jsonb_typeof(tiers) IS DISTINCT FROM 'array' OR jsonb_array_length(tiers) = 0 THEN
        RETURN false;
    END IF;
    FOR tier IN SELECT value FROM jsonb_array_elements(tiers) LOOP
        IF jsonb_typeof(tier) <> 'object'
           OR (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(tier) AS k)
              IS DISTINCT FROM ARRAY['size_reduction_pct', 'threshold_pct']
           OR jsonb_typeof(tier -> 'threshold_pct') <> 'number'
           OR jsonb_typeof(tier -> 'size_reduction_pct') <> 'number' THEN
            RETURN false;
        END IF;
        threshold := (tier ->> 'threshold_pct')::numeric;
        reduction := (tier ->> 'size_reduction_pct')::numeric;
        IF threshold NOT BETWEEN 0 AND 100 OR reduction NOT BETWEEN 0 AND 100
           OR threshold <= last_threshold OR reduction < last_reduction THEN
            RETURN false;
        END IF;
        last_threshold := threshold;
        last_reduction := reduction;
    END LOOP;
    RETURN true;
END;
$$;

-- ---------- the lifecycle, row by row ----------

CREATE FUNCTION walltrack.guard_config_row() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
DECLARE
    tbl TEXT := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'draft' THEN
            RAISE EXCEPTION 'a new row in % must be a draft, not %', tbl, NEW.status USING ERRCODE = 'WT001',
                HINT = 'Insert a draft (or clone one with walltrack.clone_config), then activate it with walltrack.activate_config.';
        END IF;
        NEW.version := 1;
        NEW.created_at := now();
        NEW.updated_at := now();
        NEW.created_by := walltrack.config_actor();
        NEW.updated_by := NEW.created_by;
        RETURN NEW;
    END IF;

    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'the % row % of % cannot be deleted', OLD.status, OLD.id, tbl USING ERRCODE = 'WT001',
                HINT = 'Only drafts can be deleted (walltrack.discard_config); the others are kept for history.';
        END IF;
        RETURN OLD;
    END IF;

    IF NEW.id <> OLD.id OR NEW.created_at <> OLD.created_at OR NEW.created_by IS DISTINCT FROM OLD.created_by THEN
        RAISE EXCEPTION 'id, created_at and created_by of row % of % never change', OLD.id, tbl USING ERRCODE = 'WT001',
            HINT = 'Clone the row into a new draft instead.';
    END IF;
    -- A client that sets version to the one it read gets optimistic locking: a stale one is refused.
    IF NEW.version <> OLD.version THEN
        RAISE EXCEPTION 'row % of % is at version %, not %', OLD.id, tbl, OLD.version, NEW.version
            USING ERRCODE = 'WT002', HINT = 'Someone changed it since you read it: reload it and apply your change again.';
    END IF;
    -- Bookkeeping is ours: what a client writes there is ignored.
    NEW.updated_at := OLD.updated_at;
    NEW.updated_by := OLD.updated_by;

    IF NEW.status = OLD.status THEN
        IF OLD.status <> 'draft'
           AND walltrack.config_changed_fields(to_jsonb(OLD), to_jsonb(NEW), false) <> '{}' THEN
            RAISE EXCEPTION 'the % row % of % is read-only', OLD.status, OLD.id, tbl USING ERRCODE = 'WT001',
                HINT = 'Clone it into a draft (walltrack.clone_config), edit the draft, then activate it.';
        END IF;
    ELSIF (OLD.status::text, NEW.status::text) NOT IN (('draft', 'active'), ('active', 'archived'), ('archived', 'active')) THEN
        RAISE EXCEPTION 'the status of row % of % cannot go from % to %', OLD.id, tbl, OLD.status, NEW.status
            USING ERRCODE = 'WT001',
            HINT = CASE
                WHEN OLD.status = 'default' OR NEW.status = 'default' THEN 'The defaults never change; clone them into a draft.'
                WHEN NEW.status = 'draft' THEN 'Restore the row as a new draft with walltrack.restore_config.'
                ELSE 'Activate the draft (walltrack.activate_config) or delete it (walltrack.discard_config).'
            END;
    ELSIF walltrack.config_changed_fields(to_jsonb(OLD), to_jsonb(NEW), false) <> '{}' THEN
        RAISE EXCEPTION 'row % of % changes status and settings at once', OLD.id, tbl USING ERRCODE = 'WT001',
            HINT = 'Edit the draft first, then activate it.';
    END IF;

    IF NEW IS DISTINCT FROM OLD THEN
        NEW.updated_by := walltrack.config_actor();
    END IF;
    RETURN NEW;
END;
$$;

-- Deferred to commit: a transaction may archive the active row and activate another, in either order,
-- but it cannot commit with no active row (the unique index of V8 already refuses two).
CREATE FUNCTION walltrack.check_config_has_active() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
DECLARE
    active_rows BIGINT;
BEGIN
    EXECUTE format('SELECT count(*) FROM %I.%I WHERE status = ''active''', TG_TABLE_SCHEMA, TG_TABLE_NAME)
        INTO active_rows;
    IF active_rows <> 1 THEN
        RAISE EXCEPTION '%.% would have % active configs at commit', TG_TABLE_SCHEMA, TG_TABLE_NAME, active_rows
            USING ERRCODE = 'WT001',
            HINT = 'There is always exactly one active config: activate a draft or roll back in the same transaction.';
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION walltrack.refuse_config_truncate() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'TRUNCATE of %.% is refused', TG_TABLE_SCHEMA, TG_TABLE_NAME USING ERRCODE = 'WT001',
        HINT = 'Config rows and their audit trail are kept; discard drafts one by one.';
END;
$$;

-- ---------- the audit trail ----------

CREATE FUNCTION walltrack.audit_config_change() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
DECLARE
    old_row JSONB := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
    new_row JSONB := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
BEGIN
    INSERT INTO walltrack.config_audit_log
        (config_table, config_id, action, old_values, new_values, changed_fields,
         reason, performed_by, source_ip, user_agent)
    VALUES (
        TG_TABLE_NAME,
        (coalesce(new_row, old_row) ->> 'id')::uuid,
        CASE TG_OP
            WHEN 'INSERT' THEN CASE WHEN current_setting('walltrack.audit_action', true) = 'restore'
                                    THEN 'restore' ELSE 'create' END
            WHEN 'DELETE' THEN 'delete'
            ELSE CASE WHEN new_row ->> 'status' = old_row ->> 'status' THEN 'update'
                      WHEN new_row ->> 'status' = 'active' THEN 'activate'
                      ELSE 'archive' END
        END,
        old_row,
        new_row,
        CASE WHEN TG_OP = 'UPDATE' THEN walltrack.config_changed_fields(old_row, new_row, true) END,
        nullif(current_setting('walltrack.reason', true), ''),
        walltrack.config_actor(),
        left(coalesce(nullif(current_setting('walltrack.source_ip', true), ''), host(inet_client_addr())), 45),
        coalesce(nullif(current_setting('walltrack.user_agent', true), ''), nullif(current_setting('application_name'), ''))
    );
    RETURN NULL;
END;
$$;

CREATE FUNCTION walltrack.refuse_audit_change() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on walltrack.config_audit_log is refused: the audit log is append-only', TG_OP
        USING ERRCODE = 'WT001', HINT = 'Audit rows are never changed or removed.';
END;
$$;

CREATE TRIGGER trg_config_audit_log_append_only
    BEFORE UPDATE OR DELETE ON walltrack.config_audit_log
    FOR EACH ROW EXECUTE FUNCTION walltrack.refuse_audit_change();

CREATE TRIGGER trg_config_audit_log_no_truncate
    BEFORE TRUNCATE ON walltrack.config_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION walltrack.refuse_audit_change();

-- ---------- transitions, for any client ----------
-- Each takes the domain, the row, the actor and the reason (both recorded in the audit log), and
-- serialises with other transitions of the same table on a transaction lock keyed by the table's oid:
-- the second operator waits, then sees the first one's result; nobody deadlocks.

CREATE FUNCTION walltrack.config_begin(domain TEXT, actor TEXT, reason TEXT) RETURNS REGCLASS
LANGUAGE plpgsql AS $$
DECLARE
    tbl REGCLASS := walltrack.config_table(domain);
BEGIN
    IF actor IS NOT NULL THEN
        PERFORM set_config('walltrack.actor', actor, true);
    END IF;
    IF reason IS NOT NULL THEN
        PERFORM set_config('walltrack.reason', reason, true);
    END IF;
    PERFORM pg_advisory_xact_lock(tbl::oid::bigint);
    RETURN tbl;
END;
$$;

-- The row's status, locked; WT003 when there is no such row.
CREATE FUNCTION walltrack.config_lock_row(tbl REGCLASS, row_id UUID) RETURNS walltrack.config_status
LANGUAGE plpgsql AS $$
DECLARE
    found_status walltrack.config_status;
BEGIN
    EXECUTE format('SELECT status FROM %s WHERE id = $1 FOR UPDATE', tbl) INTO found_status USING row_id;
    IF found_status IS NULL THEN
        RAISE EXCEPTION 'no row % in %', quote_nullable(row_id), tbl USING ERRCODE = 'WT003',
            HINT = 'List the rows of the domain to find the id.';
    END IF;
    RETURN found_status;
END;
$$;

-- A new draft copied from any row; restore when the source is archived and restoring is asked.
CREATE FUNCTION walltrack.clone_config(domain TEXT, source_id UUID, new_name TEXT DEFAULT NULL,
                                       actor TEXT DEFAULT NULL, reason TEXT DEFAULT NULL,
                                       as_restore BOOLEAN DEFAULT false)
RETURNS UUID LANGUAGE plpgsql AS $$
DECLARE
    tbl REGCLASS := walltrack.config_begin(domain, actor, reason);
    source_status walltrack.config_status := walltrack.config_lock_row(tbl, source_id);
    source_name TEXT;
    cols TEXT := (SELECT string_agg(quote_ident(c), ', ') FROM unnest(walltrack.config_setting_columns(tbl)) AS c);
    draft_name TEXT := new_name;
    n INT := 1;
    taken BOOLEAN;
    new_id UUID;
BEGIN
    IF as_restore AND source_status <> 'archived' THEN
        RAISE EXCEPTION 'row % of % is %, only archived rows are restored', source_id, tbl, source_status
            USING ERRCODE = 'WT001', HINT = 'Clone it into a draft instead.';
    END IF;
    EXECUTE format('SELECT name FROM %s WHERE id = $1', tbl) INTO source_name USING source_id;
    -- A draft of a draft of X is '<X> (draft N)', not '<X> (draft) (draft)'.
    source_name := left(regexp_replace(source_name, ' \(draft( [0-9]+)?\)$', ''), 85);
    IF draft_name IS NULL THEN
        draft_name := source_name || ' (draft)';
        LOOP
            EXECUTE format('SELECT EXISTS (SELECT FROM %s WHERE status = ''draft'' AND name = $1)', tbl)
                INTO taken USING draft_name;
            EXIT WHEN NOT taken;
            n := n + 1;
            draft_name := source_name || ' (draft ' || n || ')';
        END LOOP;
    END IF;
    PERFORM set_config('walltrack.audit_action', CASE WHEN as_restore THEN 'restore' ELSE 'create' END, true);
    EXECUTE format('INSERT INTO %s (name, status, description, %s) SELECT $1, ''draft'', description, %s FROM %s WHERE id = $2 RETURNING id',
                   tbl, cols, cols, tbl)
        INTO new_id USING draft_name, source_id;
    PERFORM set_config('walltrack.audit_action', '', true);
    RETURN new_id;
END;
$$;

CREATE FUNCTION walltrack.restore_config(domain TEXT, archived_id UUID, new_name TEXT DEFAULT NULL,
                                         actor TEXT DEFAULT NULL, reason TEXT DEFAULT NULL)
RETURNS UUID LANGUAGE sql AS $$
    SELECT walltrack.clone_config(domain, archived_id, new_name, actor, reason, true)
$$;

-- Edit a draft: changes is a JSON object of column -> new value; expected_version is the version the
-- caller read. Returns the new version (the same one when nothing changed).
CREATE FUNCTION walltrack.edit_config(domain TEXT, draft_id UUID, expected_version INT, changes JSONB,
                                      actor TEXT DEFAULT NULL, reason TEXT DEFAULT NULL)
RETURNS INT LANGUAGE plpgsql AS $$
DECLARE
    tbl REGCLASS := walltrack.config_begin(domain, actor, reason);
    row_status walltrack.config_status := walltrack.config_lock_row(tbl, draft_id);
    editable TEXT[] := walltrack.config_setting_columns(tbl) || ARRAY['name', 'description'];
    current_version INT;
    field TEXT;
    field_type TEXT;
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
        SELECT format_type(atttypid, atttypmod) INTO field_type FROM pg_attribute
        WHERE attrelid = tbl AND attname = field;
        BEGIN
            EXECUTE format('SELECT ($1 ->> %L)::%s', field, field_type) USING changes;
        EXCEPTION WHEN data_exception THEN
            RAISE EXCEPTION 'invalid value for %: %', field, SQLERRM USING ERRCODE = 'invalid_text_representation',
                COLUMN = field, TABLE = tbl::text;
        END;
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

-- The draft goes live: the active row is archived and the draft becomes active, in one transaction.
CREATE FUNCTION walltrack.activate_config(domain TEXT, draft_id UUID,
                                          actor TEXT DEFAULT NULL, reason TEXT DEFAULT NULL)
RETURNS UUID LANGUAGE plpgsql AS $$
DECLARE
    tbl REGCLASS := walltrack.config_begin(domain, actor, reason);
    row_status walltrack.config_status := walltrack.config_lock_row(tbl, draft_id);
BEGIN
    IF row_status <> 'draft' THEN
        RAISE EXCEPTION 'row % of % is %, only a draft can be activated', draft_id, tbl, row_status
            USING ERRCODE = 'WT001',
            HINT = CASE row_status WHEN 'archived' THEN 'Roll back (walltrack.rollback_config) or restore it as a draft first.'
                                   WHEN 'active' THEN 'It is already active.'
                                   ELSE 'Clone the defaults into a draft and activate that.' END;
    END IF;
    EXECUTE format('UPDATE %s SET status = ''archived'' WHERE status = ''active''', tbl);
    EXECUTE format('UPDATE %s SET status = ''active'' WHERE id = $1', tbl) USING draft_id;
    RETURN draft_id;
END;
$$;

-- The most recently archived settings become active again; the active row is archived.
CREATE FUNCTION walltrack.rollback_config(domain TEXT, actor TEXT DEFAULT NULL, reason TEXT DEFAULT NULL)
RETURNS UUID LANGUAGE plpgsql AS $$
DECLARE
    tbl REGCLASS := walltrack.config_begin(domain, actor, reason);
    previous_id UUID;
BEGIN
    EXECUTE format('SELECT id FROM %s WHERE status = ''archived'' ORDER BY updated_at DESC, version DESC LIMIT 1 FOR UPDATE', tbl)
        INTO previous_id;
    IF previous_id IS NULL THEN
        RAISE EXCEPTION 'nothing to roll back to in %: no archived config', tbl USING ERRCODE = 'WT001',
            HINT = 'A rollback needs an earlier active config; activate a draft instead.';
    END IF;
    EXECUTE format('UPDATE %s SET status = ''archived'' WHERE status = ''active''', tbl);
    EXECUTE format('UPDATE %s SET status = ''active'' WHERE id = $1', tbl) USING previous_id;
    RETURN previous_id;
END;
$$;

-- A draft is thrown away (its last state stays in the audit log).
CREATE FUNCTION walltrack.discard_config(domain TEXT, draft_id UUID,
                                         actor TEXT DEFAULT NULL, reason TEXT DEFAULT NULL)
RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    tbl REGCLASS := walltrack.config_begin(domain, actor, reason);
    row_status walltrack.config_status := walltrack.config_lock_row(tbl, draft_id);
BEGIN
    IF row_status <> 'draft' THEN
        RAISE EXCEPTION 'the % row % of % cannot be discarded', row_status, draft_id, tbl USING ERRCODE = 'WT001',
            HINT = 'Only drafts are discarded; the others are kept for history.';
    END IF;
    EXECUTE format('DELETE FROM %s WHERE id = $1', tbl) USING draft_id;
END;
$$;

-- ---------- per table: value rules, column meanings, lifecycle and audit triggers ----------

-- ---------- walltrack.trading_config ----------
ALTER TABLE walltrack.trading_config
    ADD CONSTRAINT chk_base_position_pct CHECK (base_position_pct > 0 AND base_position_pct <= 100),
    ADD CONSTRAINT chk_max_position_sol CHECK (max_position_sol > 0),
    ADD CONSTRAINT chk_min_position_sol CHECK (min_position_sol > 0),
    ADD CONSTRAINT chk_high_conviction_multiplier CHECK (high_conviction_multiplier >= 1 AND high_conviction_multiplier <= 10),
    ADD CONSTRAINT chk_sizing_mode CHECK (sizing_mode IN ('fixed', 'risk_based')),
    ADD CONSTRAINT chk_risk_per_trade_pct CHECK (risk_per_trade_pct > 0 AND risk_per_trade_pct <= 100),
    ADD CONSTRAINT chk_max_concurrent_positions CHECK (max_concurrent_positions > 0),
    ADD CONSTRAINT chk_daily_loss_limit_pct CHECK (daily_loss_limit_pct > 0 AND daily_loss_limit_pct <= 100),
    ADD CONSTRAINT chk_max_concentration_token_pct CHECK (max_concentration_token_pct > 0 AND max_concentration_token_pct <= 100),
    ADD CONSTRAINT chk_max_concentration_cluster_pct CHECK (max_concentration_cluster_pct > 0 AND max_concentration_cluster_pct <= 100),
    ADD CONSTRAINT chk_max_positions_per_cluster CHECK (max_positions_per_cluster > 0),
    ADD CONSTRAINT chk_score_threshold CHECK (score_threshold >= 0 AND score_threshold <= 1),
    ADD CONSTRAINT chk_high_conviction_threshold CHECK (high_conviction_threshold >= 0 AND high_conviction_threshold <= 1),
    ADD CONSTRAINT chk_max_slippage_entry_bps CHECK (max_slippage_entry_bps > 0 AND max_slippage_entry_bps <= 10000),
    ADD CONSTRAINT chk_max_slippage_exit_bps CHECK (max_slippage_exit_bps > 0 AND max_slippage_exit_bps <= 10000),
    ADD CONSTRAINT chk_name CHECK (btrim(name) <> ''),
    ADD CONSTRAINT chk_position_sol_order CHECK (min_position_sol <= max_position_sol),
    ADD CONSTRAINT chk_threshold_order CHECK (score_threshold <= high_conviction_threshold),
    ADD CONSTRAINT chk_drawdown_reduction_tiers CHECK (walltrack.valid_drawdown_tiers(drawdown_reduction_tiers));

CREATE UNIQUE INDEX uq_trading_config_single_default ON walltrack.trading_config (status) WHERE status = 'default';
COMMENT ON COLUMN walltrack.trading_config.id IS 'Row id.';
COMMENT ON COLUMN walltrack.trading_config.name IS 'Name of this configuration; unique per status among default, draft and active rows.';
COMMENT ON COLUMN walltrack.trading_config.status IS 'Lifecycle: default (system presets), draft (editable copy), active (what the bot uses), archived (a former active).';
COMMENT ON COLUMN walltrack.trading_config.version IS 'Bumped by one on every change.';
COMMENT ON COLUMN walltrack.trading_config.description IS 'Free text about this configuration.';
COMMENT ON COLUMN walltrack.trading_config.created_at IS 'When the row was created.';
COMMENT ON COLUMN walltrack.trading_config.updated_at IS 'When the row last changed.';
COMMENT ON COLUMN walltrack.trading_config.created_by IS 'Who created the row.';
COMMENT ON COLUMN walltrack.trading_config.updated_by IS 'Who last changed the row.';
COMMENT ON COLUMN walltrack.trading_config.base_position_pct IS 'Standard position size. Unit: % of capital.';
COMMENT ON COLUMN walltrack.trading_config.max_position_sol IS 'Largest position. Unit: SOL.';
COMMENT ON COLUMN walltrack.trading_config.min_position_sol IS 'Smallest position. Unit: SOL.';
COMMENT ON COLUMN walltrack.trading_config.high_conviction_multiplier IS 'Size multiplier for high-conviction signals, 1 to 10. Unit: ×.';
COMMENT ON COLUMN walltrack.trading_config.sizing_mode IS 'How positions are sized: fixed (base_position_pct) or risk_based (risk_per_trade_pct).';
COMMENT ON COLUMN walltrack.trading_config.risk_per_trade_pct IS 'Capital put at risk per trade. Unit: % of capital.';
COMMENT ON COLUMN walltrack.trading_config.max_concurrent_positions IS 'Open positions allowed at once. Unit: positions.';
COMMENT ON COLUMN walltrack.trading_config.daily_loss_limit_pct IS 'Daily loss that stops new entries. Unit: % of capital.';
COMMENT ON COLUMN walltrack.trading_config.daily_loss_limit_enabled IS 'Whether the daily loss limit applies.';
COMMENT ON COLUMN walltrack.trading_config.max_concentration_token_pct IS 'Most capital in one token. Unit: % of capital.';
COMMENT ON COLUMN walltrack.trading_config.max_concentration_cluster_pct IS 'Most capital in one wallet cluster. Unit: % of capital.';
COMMENT ON COLUMN walltrack.trading_config.max_positions_per_cluster IS 'Open positions allowed per wallet cluster. Unit: positions.';
COMMENT ON COLUMN walltrack.trading_config.drawdown_reduction_tiers IS 'Position size cuts by drawdown: rising thresholds, non-decreasing reductions. Unit: % (both).';
COMMENT ON COLUMN walltrack.trading_config.score_threshold IS 'Lowest signal score that opens a position, 0 to 1. Unit: score.';
COMMENT ON COLUMN walltrack.trading_config.high_conviction_threshold IS 'Signal score from which a signal is high-conviction, 0 to 1. Unit: score.';
COMMENT ON COLUMN walltrack.trading_config.max_slippage_entry_bps IS 'Slippage accepted on entry. Unit: basis points.';
COMMENT ON COLUMN walltrack.trading_config.max_slippage_exit_bps IS 'Slippage accepted on exit. Unit: basis points.';

CREATE TRIGGER trg_trading_config_guard
    BEFORE INSERT OR UPDATE OR DELETE ON walltrack.trading_config
    FOR EACH ROW EXECUTE FUNCTION walltrack.guard_config_row();

CREATE CONSTRAINT TRIGGER trg_trading_config_one_active
    AFTER UPDATE OR DELETE ON walltrack.trading_config
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.status = 'active')
    EXECUTE FUNCTION walltrack.check_config_has_active();

CREATE TRIGGER trg_trading_config_no_truncate
    BEFORE TRUNCATE ON walltrack.trading_config
    FOR EACH STATEMENT EXECUTE FUNCTION walltrack.refuse_config_truncate();

CREATE TRIGGER trg_trading_config_audit
    AFTER INSERT OR DELETE ON walltrack.trading_config
    FOR EACH ROW EXECUTE FUNCTION walltrack.audit_config_change();

CREATE TRIGGER trg_trading_config_audit_update
    AFTER UPDATE ON walltrack.trading_config
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION walltrack.audit_config_change();

-- ---------- walltrack.scoring_config ----------
ALTER TABLE walltrack.scoring_config
    ADD CONSTRAINT chk_wallet_score_weight CHECK (wallet_score_weight >= 0 AND wallet_score_weight <= 1),
    ADD CONSTRAINT chk_timing_score_weight CHECK (timing_score_weight >= 0 AND timing_score_weight <= 1),
    ADD CONSTRAINT chk_market_score_weight CHECK (market_score_weight >= 0 AND market_score_weight <= 1),
    ADD CONSTRAINT chk_cluster_score_weight CHECK (cluster_score_weight >= 0 AND cluster_score_weight <= 1),
    ADD CONSTRAINT chk_wallet_win_rate_weight CHECK (wallet_win_rate_weight >= 0 AND wallet_win_rate_weight <= 1),
    ADD CONSTRAINT chk_wallet_avg_pnl_weight CHECK (wallet_avg_pnl_weight >= 0 AND wallet_avg_pnl_weight <= 1),
    ADD CONSTRAINT chk_wallet_consistency_weight CHECK (wallet_consistency_weight >= 0 AND wallet_consistency_weight <= 1),
    ADD CONSTRAINT chk_timing_decay_hours CHECK (timing_decay_hours > 0),
    ADD CONSTRAINT chk_timing_freshness_bonus CHECK (timing_freshness_bonus >= 0 AND timing_freshness_bonus <= 1),
    ADD CONSTRAINT chk_market_liquidity_threshold CHECK (market_liquidity_threshold >= 0),
    ADD CONSTRAINT chk_market_volume_threshold CHECK (market_volume_threshold >= 0),
    ADD CONSTRAINT chk_cluster_min_sync_ratio CHECK (cluster_min_sync_ratio >= 0 AND cluster_min_sync_ratio <= 1),
    ADD CONSTRAINT chk_cluster_amplification_factor CHECK (cluster_amplification_factor >= 1),
    ADD CONSTRAINT chk_name CHECK (btrim(name) <> ''),
    ADD CONSTRAINT chk_score_weights_sum CHECK (abs(wallet_score_weight + timing_score_weight + market_score_weight + cluster_score_weight - 1) <= 0.001),
    ADD CONSTRAINT chk_wallet_weights_sum CHECK (abs(wallet_win_rate_weight + wallet_avg_pnl_weight + wallet_consistency_weight - 1) <= 0.001);

CREATE UNIQUE INDEX uq_scoring_config_single_default ON walltrack.scoring_config (status) WHERE status = 'default';
COMMENT ON COLUMN walltrack.scoring_config.id IS 'Row id.';
COMMENT ON COLUMN walltrack.scoring_config.name IS 'Name of this configuration; unique per status among default, draft and active rows.';
COMMENT ON COLUMN walltrack.scoring_config.status IS 'Lifecycle: default (system presets), draft (editable copy), active (what the bot uses), archived (a former active).';
COMMENT ON COLUMN walltrack.scoring_config.version IS 'Bumped by one on every change.';
COMMENT ON COLUMN walltrack.scoring_config.description IS 'Free text about this configuration.';
COMMENT ON COLUMN walltrack.scoring_config.created_at IS 'When the row was created.';
COMMENT ON COLUMN walltrack.scoring_config.updated_at IS 'When the row last changed.';
COMMENT ON COLUMN walltrack.scoring_config.created_by IS 'Who created the row.';
COMMENT ON COLUMN walltrack.scoring_config.updated_by IS 'Who last changed the row.';
COMMENT ON COLUMN walltrack.scoring_config.wallet_score_weight IS 'Weight of the wallet score in a signal''s score; the four weights sum to 1. Unit: fraction.';
COMMENT ON COLUMN walltrack.scoring_config.timing_score_weight IS 'Weight of the timing score in a signal''s score; the four weights sum to 1. Unit: fraction.';
COMMENT ON COLUMN walltrack.scoring_config.market_score_weight IS 'Weight of the market score in a signal''s score; the four weights sum to 1. Unit: fraction.';
COMMENT ON COLUMN walltrack.scoring_config.cluster_score_weight IS 'Weight of the cluster score in a signal''s score; the four weights sum to 1. Unit: fraction.';
COMMENT ON COLUMN walltrack.scoring_config.wallet_win_rate_weight IS 'Weight of win rate in the wallet score; the three weights sum to 1. Unit: fraction.';
COMMENT ON COLUMN walltrack.scoring_config.wallet_avg_pnl_weight IS 'Weight of average PnL in the wallet score; the three weights sum to 1. Unit: fraction.';
COMMENT ON COLUMN walltrack.scoring_config.wallet_consistency_weight IS 'Weight of consistency in the wallet score; the three weights sum to 1. Unit: fraction.';
COMMENT ON COLUMN walltrack.scoring_config.timing_decay_hours IS 'Time over which the timing score decays. Unit: hours.';
COMMENT ON COLUMN walltrack.scoring_config.timing_freshness_bonus IS 'Bonus added to the timing score of a fresh signal, 0 to 1. Unit: score.';
COMMENT ON COLUMN walltrack.scoring_config.market_liquidity_threshold IS 'Least token liquidity for a full market score. Unit: USD.';
COMMENT ON COLUMN walltrack.scoring_config.market_volume_threshold IS 'Least 24-hour volume for a full market score. Unit: USD.';
COMMENT ON COLUMN walltrack.scoring_config.cluster_min_sync_ratio IS 'Share of a cluster that must buy together to amplify, 0 to 1. Unit: fraction.';
COMMENT ON COLUMN walltrack.scoring_config.cluster_amplification_factor IS 'Score multiplier for a synchronised cluster, 1 or more. Unit: ×.';

CREATE TRIGGER trg_scoring_config_guard
    BEFORE INSERT OR UPDATE OR DELETE ON walltrack.scoring_config
    FOR EACH ROW EXECUTE FUNCTION walltrack.guard_config_row();

CREATE CONSTRAINT TRIGGER trg_scoring_config_one_active
    AFTER UPDATE OR DELETE ON walltrack.scoring_config
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.status = 'active')
    EXECUTE FUNCTION walltrack.check_config_has_active();

CREATE TRIGGER trg_scoring_config_no_truncate
    BEFORE TRUNCATE ON walltrack.scoring_config
    FOR EACH STATEMENT EXECUTE FUNCTION walltrack.refuse_config_truncate();

CREATE TRIGGER trg_scoring_config_audit
    AFTER INSERT OR DELETE ON walltrack.scoring_config
    FOR EACH ROW EXECUTE FUNCTION walltrack.audit_config_change();

CREATE TRIGGER trg_scoring_config_audit_update
    AFTER UPDATE ON walltrack.scoring_config
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION walltrack.audit_config_change();

-- ---------- walltrack.discovery_config ----------
ALTER TABLE walltrack.discovery_config
    ADD CONSTRAINT chk_run_interval_minutes CHECK (run_interval_minutes > 0),
    ADD CONSTRAINT chk_max_wallets_per_run CHECK (max_wallets_per_run > 0),
    ADD CONSTRAINT chk_min_wallet_age_days CHECK (min_wallet_age_days >= 0),
    ADD CONSTRAINT chk_min_win_rate CHECK (min_win_rate >= 0 AND min_win_rate <= 1),
    ADD CONSTRAINT chk_min_trades CHECK (min_trades > 0),
    ADD CONSTRAINT chk_min_avg_pnl_pct CHECK (min_avg_pnl_pct >= -100),
    ADD CONSTRAINT chk_max_avg_loss_pct CHECK (max_avg_loss_pct >= -100 AND max_avg_loss_pct <= 0),
    ADD CONSTRAINT chk_decay_lookback_days CHECK (decay_lookback_days > 0),
    ADD CONSTRAINT chk_decay_threshold CHECK (decay_threshold >= 0 AND decay_threshold <= 1),
    ADD CONSTRAINT chk_decay_check_interval_hours CHECK (decay_check_interval_hours > 0),
    ADD CONSTRAINT chk_pump_volume_spike_threshold CHECK (pump_volume_spike_threshold >= 1),
    ADD CONSTRAINT chk_pump_price_spike_threshold CHECK (pump_price_spike_threshold >= 1),
    ADD CONSTRAINT chk_name CHECK (btrim(name) <> '');

CREATE UNIQUE INDEX uq_discovery_config_single_default ON walltrack.discovery_config (status) WHERE status = 'default';
COMMENT ON COLUMN walltrack.discovery_config.id IS 'Row id.';
COMMENT ON COLUMN walltrack.discovery_config.name IS 'Name of this configuration; unique per status among default, draft and active rows.';
COMMENT ON COLUMN walltrack.discovery_config.status IS 'Lifecycle: default (system presets), draft (editable copy), active (what the bot uses), archived (a former active).';
COMMENT ON COLUMN walltrack.discovery_config.version IS 'Bumped by one on every change.';
COMMENT ON COLUMN walltrack.discovery_config.description IS 'Free text about this configuration.';
COMMENT ON COLUMN walltrack.discovery_config.created_at IS 'When the row was created.';
COMMENT ON COLUMN walltrack.discovery_config.updated_at IS 'When the row last changed.';
COMMENT ON COLUMN walltrack.discovery_config.created_by IS 'Who created the row.';
COMMENT ON COLUMN walltrack.discovery_config.updated_by IS 'Who last changed the row.';
COMMENT ON COLUMN walltrack.discovery_config.run_interval_minutes IS 'Time between wallet discovery runs. Unit: minutes.';
COMMENT ON COLUMN walltrack.discovery_config.max_wallets_per_run IS 'Most wallets examined in one discovery run. Unit: wallets.';
COMMENT ON COLUMN walltrack.discovery_config.min_wallet_age_days IS 'Youngest wallet considered. Unit: days.';
COMMENT ON COLUMN walltrack.discovery_config.min_win_rate IS 'Lowest win rate for a wallet to qualify, 0 to 1. Unit: fraction.';
COMMENT ON COLUMN walltrack.discovery_config.min_trades IS 'Fewest trades for a wallet to qualify. Unit: trades.';
COMMENT ON COLUMN walltrack.discovery_config.min_avg_pnl_pct IS 'Lowest average PnL per trade for a wallet to qualify. Unit: %.';
COMMENT ON COLUMN walltrack.discovery_config.max_avg_loss_pct IS 'Deepest average loss tolerated, -100 to 0. Unit: %.';
COMMENT ON COLUMN walltrack.discovery_config.decay_lookback_days IS 'History used to detect a wallet''s decay. Unit: days.';
COMMENT ON COLUMN walltrack.discovery_config.decay_threshold IS 'Drop in win rate that marks a wallet as decaying, 0 to 1. Unit: fraction.';
COMMENT ON COLUMN walltrack.discovery_config.decay_check_interval_hours IS 'Time between decay checks. Unit: hours.';
COMMENT ON COLUMN walltrack.discovery_config.pump_volume_spike_threshold IS 'Volume over its normal level that marks a pump, 1 or more. Unit: ×.';
COMMENT ON COLUMN walltrack.discovery_config.pump_price_spike_threshold IS 'Price over its normal level that marks a pump, 1 or more. Unit: ×.';

CREATE TRIGGER trg_discovery_config_guard
    BEFORE INSERT OR UPDATE OR DELETE ON walltrack.discovery_config
    FOR EACH ROW EXECUTE FUNCTION walltrack.guard_config_row();

CREATE CONSTRAINT TRIGGER trg_discovery_config_one_active
    AFTER UPDATE OR DELETE ON walltrack.discovery_config
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.status = 'active')
    EXECUTE FUNCTION walltrack.check_config_has_active();

CREATE TRIGGER trg_discovery_config_no_truncate
    BEFORE TRUNCATE ON walltrack.discovery_config
    FOR EACH STATEMENT EXECUTE FUNCTION walltrack.refuse_config_truncate();

CREATE TRIGGER trg_discovery_config_audit
    AFTER INSERT OR DELETE ON walltrack.discovery_config
    FOR EACH ROW EXECUTE FUNCTION walltrack.audit_config_change();

CREATE TRIGGER trg_discovery_config_audit_update
    AFTER UPDATE ON walltrack.discovery_config
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION walltrack.audit_config_change();

-- ---------- walltrack.cluster_config ----------
ALTER TABLE walltrack.cluster_config
    ADD CONSTRAINT chk_min_cluster_size CHECK (min_cluster_size >= 2),
    ADD CONSTRAINT chk_max_cluster_size CHECK (max_cluster_size >= 2),
    ADD CONSTRAINT chk_similarity_threshold CHECK (similarity_threshold >= 0 AND similarity_threshold <= 1),
    ADD CONSTRAINT chk_sync_time_window_minutes CHECK (sync_time_window_minutes > 0),
    ADD CONSTRAINT chk_sync_token_overlap_threshold CHECK (sync_token_overlap_threshold >= 0 AND sync_token_overlap_threshold <= 1),
    ADD CONSTRAINT chk_leader_min_followers CHECK (leader_min_followers > 0),
    ADD CONSTRAINT chk_leader_time_advantage_minutes CHECK (leader_time_advantage_minutes > 0),
    ADD CONSTRAINT chk_amplification_max_boost CHECK (amplification_max_boost >= 1),
    ADD CONSTRAINT chk_name CHECK (btrim(name) <> ''),
    ADD CONSTRAINT chk_cluster_size_order CHECK (min_cluster_size <= max_cluster_size);

CREATE UNIQUE INDEX uq_cluster_config_single_default ON walltrack.cluster_config (status) WHERE status = 'default';
COMMENT ON COLUMN walltrack.cluster_config.id IS 'Row id.';
COMMENT ON COLUMN walltrack.cluster_config.name IS 'Name of this configuration; unique per status among default, draft and active rows.';
COMMENT ON COLUMN walltrack.cluster_config.status IS 'Lifecycle: default (system presets), draft (editable copy), active (what the bot uses), archived (a former active).';
COMMENT ON COLUMN walltrack.cluster_config.version IS 'Bumped by one on every change.';
COMMENT ON COLUMN walltrack.cluster_config.description IS 'Free text about this configuration.';
COMMENT ON COLUMN walltrack.cluster_config.created_at IS 'When the row was created.';
COMMENT ON COLUMN walltrack.cluster_config.updated_at IS 'When the row last changed.';
COMMENT ON COLUMN walltrack.cluster_config.created_by IS 'Who created the row.';
COMMENT ON COLUMN walltrack.cluster_config.updated_by IS 'Who last changed the row.';
COMMENT ON COLUMN walltrack.cluster_config.min_cluster_size IS 'Fewest wallets that form a cluster, 2 or more. Unit: wallets.';
COMMENT ON COLUMN walltrack.cluster_config.max_cluster_size IS 'Most wallets in one cluster. Unit: wallets.';
COMMENT ON COLUMN walltrack.cluster_config.similarity_threshold IS 'Lowest similarity for two wallets to share a cluster, 0 to 1. Unit: fraction.';
COMMENT ON COLUMN walltrack.cluster_config.sync_time_window_minutes IS 'Window in which buys count as synchronised. Unit: minutes.';
COMMENT ON COLUMN walltrack.cluster_config.sync_token_overlap_threshold IS 'Share of tokens two wallets must have in common, 0 to 1. Unit: fraction.';
COMMENT ON COLUMN walltrack.cluster_config.leader_min_followers IS 'Fewest followers for a wallet to count as a leader. Unit: wallets.';
COMMENT ON COLUMN walltrack.cluster_config.leader_time_advantage_minutes IS 'How far a leader buys ahead of its followers. Unit: minutes.';
COMMENT ON COLUMN walltrack.cluster_config.enable_cluster_amplification IS 'Whether synchronised clusters amplify signal scores.';
COMMENT ON COLUMN walltrack.cluster_config.amplification_max_boost IS 'Largest score multiplier from cluster amplification, 1 or more. Unit: ×.';

CREATE TRIGGER trg_cluster_config_guard
    BEFORE INSERT OR UPDATE OR DELETE ON walltrack.cluster_config
    FOR EACH ROW EXECUTE FUNCTION walltrack.guard_config_row();

CREATE CONSTRAINT TRIGGER trg_cluster_config_one_active
    AFTER UPDATE OR DELETE ON walltrack.cluster_config
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.status = 'active')
    EXECUTE FUNCTION walltrack.check_config_has_active();

CREATE TRIGGER trg_cluster_config_no_truncate
    BEFORE TRUNCATE ON walltrack.cluster_config
    FOR EACH STATEMENT EXECUTE FUNCTION walltrack.refuse_config_truncate();

CREATE TRIGGER trg_cluster_config_audit
    AFTER INSERT OR DELETE ON walltrack.cluster_config
    FOR EACH ROW EXECUTE FUNCTION walltrack.audit_config_change();

CREATE TRIGGER trg_cluster_config_audit_update
    AFTER UPDATE ON walltrack.cluster_config
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION walltrack.audit_config_change();

-- ---------- walltrack.risk_config ----------
ALTER TABLE walltrack.risk_config
    ADD CONSTRAINT chk_circuit_breaker_loss_threshold CHECK (circuit_breaker_loss_threshold > 0 AND circuit_breaker_loss_threshold <= 100),
    ADD CONSTRAINT chk_circuit_breaker_cooldown_minutes CHECK (circuit_breaker_cooldown_minutes > 0),
    ADD CONSTRAINT chk_max_drawdown_pct CHECK (max_drawdown_pct > 0 AND max_drawdown_pct <= 100),
    ADD CONSTRAINT chk_drawdown_lookback_days CHECK (drawdown_lookback_days > 0),
    ADD CONSTRAINT chk_max_order_attempts CHECK (max_order_attempts > 0),
    ADD CONSTRAINT chk_retry_delay_base_seconds CHECK (retry_delay_base_seconds > 0),
    ADD CONSTRAINT chk_retry_delay_multiplier CHECK (retry_delay_multiplier >= 1),
    ADD CONSTRAINT chk_emergency_exit_threshold_pct CHECK (emergency_exit_threshold_pct > 0 AND emergency_exit_threshold_pct <= 100),
    ADD CONSTRAINT chk_name CHECK (btrim(name) <> '');

CREATE UNIQUE INDEX uq_risk_config_single_default ON walltrack.risk_config (status) WHERE status = 'default';
COMMENT ON COLUMN walltrack.risk_config.id IS 'Row id.';
COMMENT ON COLUMN walltrack.risk_config.name IS 'Name of this configuration; unique per status among default, draft and active rows.';
COMMENT ON COLUMN walltrack.risk_config.status IS 'Lifecycle: default (system presets), draft (editable copy), active (what the bot uses), archived (a former active).';
COMMENT ON COLUMN walltrack.risk_config.version IS 'Bumped by one on every change.';
COMMENT ON COLUMN walltrack.risk_config.description IS 'Free text about this configuration.';
COMMENT ON COLUMN walltrack.risk_config.created_at IS 'When the row was created.';
COMMENT ON COLUMN walltrack.risk_config.updated_at IS 'When the row last changed.';
COMMENT ON COLUMN walltrack.risk_config.created_by IS 'Who created the row.';
COMMENT ON COLUMN walltrack.risk_config.updated_by IS 'Who last changed the row.';
COMMENT ON COLUMN walltrack.risk_config.circuit_breaker_enabled IS 'Whether the circuit breaker can halt trading.';
COMMENT ON COLUMN walltrack.risk_config.circuit_breaker_loss_threshold IS 'Loss that trips the circuit breaker. Unit: % of capital.';
COMMENT ON COLUMN walltrack.risk_config.circuit_breaker_cooldown_minutes IS 'Time trading stays halted after the breaker trips. Unit: minutes.';
COMMENT ON COLUMN walltrack.risk_config.max_drawdown_pct IS 'Largest drawdown from the peak before trading stops. Unit: %.';
COMMENT ON COLUMN walltrack.risk_config.drawdown_lookback_days IS 'Period over which drawdown is measured. Unit: days.';
COMMENT ON COLUMN walltrack.risk_config.max_order_attempts IS 'Attempts per order before it is given up. Unit: attempts.';
COMMENT ON COLUMN walltrack.risk_config.retry_delay_base_seconds IS 'Wait before the first order retry. Unit: seconds.';
COMMENT ON COLUMN walltrack.risk_config.retry_delay_multiplier IS 'Factor by which each retry''s wait grows, 1 or more. Unit: ×.';
COMMENT ON COLUMN walltrack.risk_config.emergency_exit_threshold_pct IS 'Loss on a position that forces an immediate exit. Unit: %.';

CREATE TRIGGER trg_risk_config_guard
    BEFORE INSERT OR UPDATE OR DELETE ON walltrack.risk_config
    FOR EACH ROW EXECUTE FUNCTION walltrack.guard_config_row();

CREATE CONSTRAINT TRIGGER trg_risk_config_one_active
    AFTER UPDATE OR DELETE ON walltrack.risk_config
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.status = 'active')
    EXECUTE FUNCTION walltrack.check_config_has_active();

CREATE TRIGGER trg_risk_config_no_truncate
    BEFORE TRUNCATE ON walltrack.risk_config
    FOR EACH STATEMENT EXECUTE FUNCTION walltrack.refuse_config_truncate();

CREATE TRIGGER trg_risk_config_audit
    AFTER INSERT OR DELETE ON walltrack.risk_config
    FOR EACH ROW EXECUTE FUNCTION walltrack.audit_config_change();

CREATE TRIGGER trg_risk_config_audit_update
    AFTER UPDATE ON walltrack.risk_config
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION walltrack.audit_config_change();

-- ---------- walltrack.exit_config ----------
ALTER TABLE walltrack.exit_config
    ADD CONSTRAINT chk_default_max_hold_hours CHECK (default_max_hold_hours > 0),
    ADD CONSTRAINT chk_stagnation_hours CHECK (stagnation_hours > 0),
    ADD CONSTRAINT chk_stagnation_threshold_pct CHECK (stagnation_threshold_pct > 0 AND stagnation_threshold_pct <= 100),
    ADD CONSTRAINT chk_price_collection_interval_seconds CHECK (price_collection_interval_seconds > 0),
    ADD CONSTRAINT chk_price_history_retention_days CHECK (price_history_retention_days > 0),
    ADD CONSTRAINT chk_name CHECK (btrim(name) <> '');

CREATE UNIQUE INDEX uq_exit_config_single_default ON walltrack.exit_config (status) WHERE status = 'default';
COMMENT ON COLUMN walltrack.exit_config.id IS 'Row id.';
COMMENT ON COLUMN walltrack.exit_config.name IS 'Name of this configuration; unique per status among default, draft and active rows.';
COMMENT ON COLUMN walltrack.exit_config.status IS 'Lifecycle: default (system presets), draft (editable copy), active (what the bot uses), archived (a former active).';
COMMENT ON COLUMN walltrack.exit_config.version IS 'Bumped by one on every change.';
COMMENT ON COLUMN walltrack.exit_config.description IS 'Free text about this configuration.';
COMMENT ON COLUMN walltrack.exit_config.created_at IS 'When the row was created.';
COMMENT ON COLUMN walltrack.exit_config.updated_at IS 'When the row last changed.';
COMMENT ON COLUMN walltrack.exit_config.created_by IS 'Who created the row.';
COMMENT ON COLUMN walltrack.exit_config.updated_by IS 'Who last changed the row.';
COMMENT ON COLUMN walltrack.exit_config.default_strategy_standard_id IS 'Exit strategy for standard positions, or none. Unit: strategy id.';
COMMENT ON COLUMN walltrack.exit_config.default_strategy_high_conviction_id IS 'Exit strategy for high-conviction positions, or none. Unit: strategy id.';
COMMENT ON COLUMN walltrack.exit_config.default_max_hold_hours IS 'Longest a position is held. Unit: hours.';
COMMENT ON COLUMN walltrack.exit_config.stagnation_hours IS 'Time without progress after which a position is stagnant. Unit: hours.';
COMMENT ON COLUMN walltrack.exit_config.stagnation_threshold_pct IS 'Price move below which a position counts as stagnant. Unit: %.';
COMMENT ON COLUMN walltrack.exit_config.price_collection_interval_seconds IS 'Time between price samples of open positions. Unit: seconds.';
COMMENT ON COLUMN walltrack.exit_config.price_history_retention_days IS 'How long price history is kept. Unit: days.';

CREATE TRIGGER trg_exit_config_guard
    BEFORE INSERT OR UPDATE OR DELETE ON walltrack.exit_config
    FOR EACH ROW EXECUTE FUNCTION walltrack.guard_config_row();

CREATE CONSTRAINT TRIGGER trg_exit_config_one_active
    AFTER UPDATE OR DELETE ON walltrack.exit_config
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.status = 'active')
    EXECUTE FUNCTION walltrack.check_config_has_active();

CREATE TRIGGER trg_exit_config_no_truncate
    BEFORE TRUNCATE ON walltrack.exit_config
    FOR EACH STATEMENT EXECUTE FUNCTION walltrack.refuse_config_truncate();

CREATE TRIGGER trg_exit_config_audit
    AFTER INSERT OR DELETE ON walltrack.exit_config
    FOR EACH ROW EXECUTE FUNCTION walltrack.audit_config_change();

CREATE TRIGGER trg_exit_config_audit_update
    AFTER UPDATE ON walltrack.exit_config
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION walltrack.audit_config_change();

-- ---------- walltrack.api_config ----------
ALTER TABLE walltrack.api_config
    ADD CONSTRAINT chk_dexscreener_requests_per_minute CHECK (dexscreener_requests_per_minute > 0),
    ADD CONSTRAINT chk_birdeye_requests_per_minute CHECK (birdeye_requests_per_minute > 0),
    ADD CONSTRAINT chk_jupiter_requests_per_minute CHECK (jupiter_requests_per_minute > 0),
    ADD CONSTRAINT chk_helius_requests_per_minute CHECK (helius_requests_per_minute > 0),
    ADD CONSTRAINT chk_api_timeout_seconds CHECK (api_timeout_seconds > 0),
    ADD CONSTRAINT chk_rpc_timeout_seconds CHECK (rpc_timeout_seconds > 0),
    ADD CONSTRAINT chk_api_retry_count CHECK (api_retry_count >= 0),
    ADD CONSTRAINT chk_api_retry_backoff_seconds CHECK (api_retry_backoff_seconds > 0),
    ADD CONSTRAINT chk_price_cache_ttl_seconds CHECK (price_cache_ttl_seconds > 0),
    ADD CONSTRAINT chk_token_info_cache_ttl_seconds CHECK (token_info_cache_ttl_seconds > 0),
    ADD CONSTRAINT chk_name CHECK (btrim(name) <> '');

CREATE UNIQUE INDEX uq_api_config_single_default ON walltrack.api_config (status) WHERE status = 'default';
COMMENT ON COLUMN walltrack.api_config.id IS 'Row id.';
COMMENT ON COLUMN walltrack.api_config.name IS 'Name of this configuration; unique per status among default, draft and active rows.';
COMMENT ON COLUMN walltrack.api_config.status IS 'Lifecycle: default (system presets), draft (editable copy), active (what the bot uses), archived (a former active).';
COMMENT ON COLUMN walltrack.api_config.version IS 'Bumped by one on every change.';
COMMENT ON COLUMN walltrack.api_config.description IS 'Free text about this configuration.';
COMMENT ON COLUMN walltrack.api_config.created_at IS 'When the row was created.';
COMMENT ON COLUMN walltrack.api_config.updated_at IS 'When the row last changed.';
COMMENT ON COLUMN walltrack.api_config.created_by IS 'Who created the row.';
COMMENT ON COLUMN walltrack.api_config.updated_by IS 'Who last changed the row.';
COMMENT ON COLUMN walltrack.api_config.dexscreener_requests_per_minute IS 'DexScreener request budget. Unit: requests per minute.';
COMMENT ON COLUMN walltrack.api_config.birdeye_requests_per_minute IS 'Birdeye request budget. Unit: requests per minute.';
COMMENT ON COLUMN walltrack.api_config.jupiter_requests_per_minute IS 'Jupiter request budget. Unit: requests per minute.';
COMMENT ON COLUMN walltrack.api_config.helius_requests_per_minute IS 'Helius request budget. Unit: requests per minute.';
COMMENT ON COLUMN walltrack.api_config.api_timeout_seconds IS 'Timeout of an HTTP API call. Unit: seconds.';
COMMENT ON COLUMN walltrack.api_config.rpc_timeout_seconds IS 'Timeout of a Solana RPC call. Unit: seconds.';
COMMENT ON COLUMN walltrack.api_config.api_retry_count IS 'Retries of a failed API call, 0 for none. Unit: retries.';
COMMENT ON COLUMN walltrack.api_config.api_retry_backoff_seconds IS 'Wait before retrying an API call. Unit: seconds.';
COMMENT ON COLUMN walltrack.api_config.price_cache_ttl_seconds IS 'How long a cached price stays fresh. Unit: seconds.';
COMMENT ON COLUMN walltrack.api_config.token_info_cache_ttl_seconds IS 'How long cached token information stays fresh. Unit: seconds.';

CREATE TRIGGER trg_api_config_guard
    BEFORE INSERT OR UPDATE OR DELETE ON walltrack.api_config
    FOR EACH ROW EXECUTE FUNCTION walltrack.guard_config_row();

CREATE CONSTRAINT TRIGGER trg_api_config_one_active
    AFTER UPDATE OR DELETE ON walltrack.api_config
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.status = 'active')
    EXECUTE FUNCTION walltrack.check_config_has_active();

CREATE TRIGGER trg_api_config_no_truncate
    BEFORE TRUNCATE ON walltrack.api_config
    FOR EACH STATEMENT EXECUTE FUNCTION walltrack.refuse_config_truncate();

CREATE TRIGGER trg_api_config_audit
    AFTER INSERT OR DELETE ON walltrack.api_config
    FOR EACH ROW EXECUTE FUNCTION walltrack.audit_config_change();

CREATE TRIGGER trg_api_config_audit_update
    AFTER UPDATE ON walltrack.api_config
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION walltrack.audit_config_change();
