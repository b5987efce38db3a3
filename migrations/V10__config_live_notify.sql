-- ============================================
-- V10: tell running processes at once when a config goes live
-- ============================================
-- Runs as-is: psql -v ON_ERROR_STOP=1 -1 -f V10__config_live_notify.sql
-- When a row becomes active (an activation or a rollback, by any client), PostgreSQL sends, at commit,
--   NOTIFY walltrack_config, '{"domain": "risk", "id": "<uuid>", "version": 3}'
-- The payload stays small (the limit is 8000 bytes): listeners read the settings themselves.
-- squawk-ignore-file prefer-robust-stmts
-- (why: the file runs in one transaction, so IF NOT EXISTS would only hide a bad state.)

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

CREATE FUNCTION walltrack.notify_config_live() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('walltrack_config', json_build_object(
        'domain', regexp_replace(TG_TABLE_NAME, '_config$', ''),
        'id', NEW.id,
        'version', NEW.version)::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_trading_config_notify
    AFTER UPDATE OF status ON walltrack.trading_config
    FOR EACH ROW WHEN (NEW.status = 'active' AND OLD.status <> 'active')
    EXECUTE FUNCTION walltrack.notify_config_live();

CREATE TRIGGER trg_scoring_config_notify
    AFTER UPDATE OF status ON walltrack.scoring_config
    FOR EACH ROW WHEN (NEW.status = 'active' AND OLD.status <> 'active')
    EXECUTE FUNCTION walltrack.notify_config_live();

CREATE TRIGGER trg_discovery_config_notify
    AFTER UPDATE OF status ON walltrack.discovery_config
    FOR EACH ROW WHEN (NEW.status = 'active' AND OLD.status <> 'active')
    EXECUTE FUNCTION walltrack.notify_config_live();

CREATE TRIGGER trg_cluster_config_notify
    AFTER UPDATE OF status ON walltrack.cluster_config
    FOR EACH ROW WHEN (NEW.status = 'active' AND OLD.status <> 'active')
    EXECUTE FUNCTION walltrack.notify_config_live();

CREATE TRIGGER trg_risk_config_notify
    AFTER UPDATE OF status ON walltrack.risk_config
    FOR EACH ROW WHEN (NEW.status = 'active' AND OLD.status <> 'active')
    EXECUTE FUNCTION walltrack.notify_config_live();

CREATE TRIGGER trg_exit_config_notify
    AFTER UPDATE OF status ON walltrack.exit_config
    FOR EACH ROW WHEN (NEW.status = 'active' AND OLD.status <> 'active')
    EXECUTE FUNCTION walltrack.notify_config_live();

CREATE TRIGGER trg_api_config_notify
    AFTER UPDATE OF status ON walltrack.api_config
    FOR EACH ROW WHEN (NEW.status = 'active' AND OLD.status <> 'active')
    EXECUTE FUNCTION walltrack.notify_config_live();
