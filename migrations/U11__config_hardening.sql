-- ============================================
-- Undo of V11__config_hardening: the database as V10 left it.
-- ============================================
-- Runs as-is: psql -v ON_ERROR_STOP=1 -1 -f U11__config_hardening.sql
-- Config rows and audit rows stay; the activation log and the audit rows' db_user are dropped with what
-- V11 added. Privileges V11 revoked on the logs are not granted back: nobody should write them by hand.
-- squawk-ignore-file ban-drop-function, ban-drop-constraint, ban-drop-column, ban-drop-table, prefer-robust-stmts
-- (why: undoing V11 means dropping what V11 created, and only that; the file runs in one transaction,
--  where IF EXISTS would only hide a database that V11 never reached.)

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- ---------- walltrack.trading_config ----------
DROP TRIGGER trg_trading_config_serialize ON walltrack.trading_config;
DROP TRIGGER trg_trading_config_activation ON walltrack.trading_config;
ALTER TABLE walltrack.trading_config
    DROP CONSTRAINT chk_base_position_pct_finite,
    DROP CONSTRAINT chk_max_position_sol_finite,
    DROP CONSTRAINT chk_min_position_sol_finite,
    DROP CONSTRAINT chk_high_conviction_multiplier_finite,
    DROP CONSTRAINT chk_risk_per_trade_pct_finite,
    DROP CONSTRAINT chk_daily_loss_limit_pct_finite,
    DROP CONSTRAINT chk_max_concentration_token_pct_finite,
    DROP CONSTRAINT chk_max_concentration_cluster_pct_finite,
    DROP CONSTRAINT chk_score_threshold_finite,
    DROP CONSTRAINT chk_high_conviction_threshold_finite,
    DROP CONSTRAINT chk_name_text;

-- ---------- walltrack.scoring_config ----------
DROP TRIGGER trg_scoring_config_serialize ON walltrack.scoring_config;
DROP TRIGGER trg_scoring_config_activation ON walltrack.scoring_config;
ALTER TABLE walltrack.scoring_config
    DROP CONSTRAINT chk_wallet_score_weight_finite,
    DROP CONSTRAINT chk_timing_score_weight_finite,
    DROP CONSTRAINT chk_market_score_weight_finite,
    DROP CONSTRAINT chk_cluster_score_weight_finite,
    DROP CONSTRAINT chk_wallet_win_rate_weight_finite,
    DROP CONSTRAINT chk_wallet_avg_pnl_weight_finite,
    DROP CONSTRAINT chk_wallet_consistency_weight_finite,
    DROP CONSTRAINT chk_timing_freshness_bonus_finite,
    DROP CONSTRAINT chk_market_liquidity_threshold_finite,
    DROP CONSTRAINT chk_market_volume_threshold_finite,
    DROP CONSTRAINT chk_cluster_min_sync_ratio_finite,
    DROP CONSTRAINT chk_cluster_amplification_factor_finite,
    DROP CONSTRAINT chk_name_text;

-- ---------- walltrack.discovery_config ----------
DROP TRIGGER trg_discovery_config_serialize ON walltrack.discovery_config;
DROP TRIGGER trg_discovery_config_activation ON walltrack.discovery_config;
ALTER TABLE walltrack.discovery_config
    DROP CONSTRAINT chk_min_win_rate_finite,
    DROP CONSTRAINT chk_min_avg_pnl_pct_finite,
    DROP CONSTRAINT chk_max_avg_loss_pct_finite,
    DROP CONSTRAINT chk_decay_threshold_finite,
    DROP CONSTRAINT chk_pump_volume_spike_threshold_finite,
    DROP CONSTRAINT chk_pump_price_spike_threshold_finite,
    DROP CONSTRAINT chk_name_text;

-- ---------- walltrack.cluster_config ----------
DROP TRIGGER trg_cluster_config_serialize ON walltrack.cluster_config;
DROP TRIGGER trg_cluster_config_activation ON walltrack.cluster_config;
ALTER TABLE walltrack.cluster_config
    DROP CONSTRAINT chk_similarity_threshold_finite,
    DROP CONSTRAINT chk_sync_token_overlap_threshold_finite,
    DROP CONSTRAINT chk_amplification_max_boost_finite,
    DROP CONSTRAINT chk_name_text;

-- ---------- walltrack.risk_config ----------
DROP TRIGGER trg_risk_config_serialize ON walltrack.risk_config;
DROP TRIGGER trg_risk_config_activation ON walltrack.risk_config;
ALTER TABLE walltrack.risk_config
    DROP CONSTRAINT chk_circuit_breaker_loss_threshold_finite,
    DROP CONSTRAINT chk_max_drawdown_pct_finite,
    DROP CONSTRAINT chk_retry_delay_multiplier_finite,
    DROP CONSTRAINT chk_emergency_exit_threshold_pct_finite,
    DROP CONSTRAINT chk_name_text;

-- ---------- walltrack.exit_config ----------
DROP TRIGGER trg_exit_config_serialize ON walltrack.exit_config;
DROP TRIGGER trg_exit_config_activation ON walltrack.exit_config;
ALTER TABLE walltrack.exit_config
    DROP CONSTRAINT chk_stagnation_threshold_pct_finite,
    DROP CONSTRAINT chk_name_text;

-- ---------- walltrack.api_config ----------
DROP TRIGGER trg_api_config_serialize ON walltrack.api_config;
DROP TRIGGER trg_api_config_activation ON walltrack.api_config;
ALTER TABLE walltrack.api_config
    DROP CONSTRAINT chk_name_text;

-- ---------- functions as V9 and V10 made them ----------

ALTER FUNCTION walltrack.ensure_single_active_config() RESET search_path;
ALTER FUNCTION walltrack.increment_config_version() RESET search_path;
ALTER FUNCTION walltrack.config_actor() RESET search_path;
ALTER FUNCTION walltrack.config_table(TEXT) RESET search_path;
ALTER FUNCTION walltrack.config_setting_columns(REGCLASS) RESET search_path;
ALTER FUNCTION walltrack.config_changed_fields(JSONB, JSONB, BOOLEAN) RESET search_path;
ALTER FUNCTION walltrack.valid_drawdown_tiers(JSONB) RESET search_path;
ALTER FUNCTION walltrack.guard_config_row() RESET search_path;
ALTER FUNCTION walltrack.check_config_has_active() RESET search_path;
ALTER FUNCTION walltrack.refuse_config_truncate() RESET search_path;
ALTER FUNCTION walltrack.refuse_audit_change() RESET search_path;
ALTER FUNCTION walltrack.config_lock_row(REGCLASS, UUID) RESET search_path;
ALTER FUNCTION walltrack.clone_config(TEXT, UUID, TEXT, TEXT, TEXT, BOOLEAN) RESET search_path;
ALTER FUNCTION walltrack.restore_config(TEXT, UUID, TEXT, TEXT, TEXT) RESET search_path;
ALTER FUNCTION walltrack.discard_config(TEXT, UUID, TEXT, TEXT) RESET search_path;

CREATE OR REPLACE FUNCTION walltrack.notify_config_live() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('walltrack_config', json_build_object(
        'domain', regexp_replace(TG_TABLE_NAME, '_config$', ''),
        'id', NEW.id,
        'version', NEW.version)::text);
    RETURN NULL;
END;
$$;

DROP FUNCTION walltrack.rollback_config(TEXT, TEXT, TEXT, UUID);
DROP FUNCTION walltrack.config_rollback_target(TEXT);
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

DROP FUNCTION walltrack.activate_config(TEXT, UUID, INT, TEXT, TEXT);
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

CREATE OR REPLACE FUNCTION walltrack.edit_config(domain TEXT, draft_id UUID, expected_version INT, changes JSONB,
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

CREATE OR REPLACE FUNCTION walltrack.config_begin(domain TEXT, actor TEXT, reason TEXT) RETURNS REGCLASS
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

CREATE OR REPLACE FUNCTION walltrack.audit_config_change() RETURNS TRIGGER
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

-- ---------- the logs ----------

GRANT EXECUTE ON FUNCTION walltrack.audit_config_change() TO PUBLIC;
DO $$
DECLARE
    revoked RECORD;
BEGIN
    FOR revoked IN SELECT * FROM walltrack.config_revoked_grants LOOP
        EXECUTE format('GRANT %s ON %s TO %s', revoked.privileges, revoked.object_name, revoked.grantee);
    END LOOP;
END
$$;
DROP TABLE walltrack.config_revoked_grants;

DROP TRIGGER trg_config_audit_log_origin ON walltrack.config_audit_log;
ALTER TABLE walltrack.config_audit_log DROP COLUMN db_user, DROP COLUMN db_client_addr;
DROP TABLE walltrack.config_activations;
DROP FUNCTION walltrack.refuse_log_change();
DROP FUNCTION walltrack.refuse_direct_log_write();
DROP FUNCTION walltrack.record_config_activation();
DROP FUNCTION walltrack.serialize_config_writes();
DROP FUNCTION walltrack.lock_config_writes();
