-- ============================================
-- Undo of V10__config_live_notify: no more notifications.
-- ============================================
-- Runs as-is: psql -v ON_ERROR_STOP=1 -1 -f U10__config_live_notify.sql
-- squawk-ignore-file ban-drop-function, prefer-robust-stmts
-- (why: undoing V10 means dropping what V10 created, and only that, in one transaction.)

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

DROP TRIGGER trg_trading_config_notify ON walltrack.trading_config;
DROP TRIGGER trg_scoring_config_notify ON walltrack.scoring_config;
DROP TRIGGER trg_discovery_config_notify ON walltrack.discovery_config;
DROP TRIGGER trg_cluster_config_notify ON walltrack.cluster_config;
DROP TRIGGER trg_risk_config_notify ON walltrack.risk_config;
DROP TRIGGER trg_exit_config_notify ON walltrack.exit_config;
DROP TRIGGER trg_api_config_notify ON walltrack.api_config;

DROP FUNCTION walltrack.notify_config_live();
