-- ============================================
-- Undo of V8__config_centralization: the database as it was before V8.
-- ============================================
-- Runs as-is: psql -v ON_ERROR_STOP=1 -1 -f U8__config_centralization.sql
-- Drops only what V8 created; other objects in schema walltrack keep their rows.
-- squawk-ignore-file ban-drop-table, ban-drop-function, prefer-robust-stmts
-- (why: undoing V8 means dropping what V8 created, and only that; the file runs in one transaction,
--  so IF EXISTS would only hide a database that V8 never reached.)

-- On a live database, fail fast rather than queue behind a long transaction and block the bot's reads.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

DROP TABLE walltrack.config_audit_log;
DROP TABLE walltrack.trading_config;
DROP TABLE walltrack.scoring_config;
DROP TABLE walltrack.discovery_config;
DROP TABLE walltrack.cluster_config;
DROP TABLE walltrack.risk_config;
DROP TABLE walltrack.exit_config;
DROP TABLE walltrack.api_config;

DROP FUNCTION walltrack.increment_config_version();
DROP FUNCTION walltrack.ensure_single_active_config();

-- The enum and the schema go only if V8 made them (its comment says so) and nothing else uses them.
DO $$
BEGIN
    IF obj_description('walltrack.config_status'::regtype, 'pg_type') = 'created by walltrack-config V8__config_centralization' THEN
        DROP TYPE walltrack.config_status;
    END IF;
    IF obj_description('walltrack'::regnamespace, 'pg_namespace') = 'created by walltrack-config V8__config_centralization'
       AND NOT EXISTS (SELECT FROM pg_depend WHERE refclassid = 'pg_namespace'::regclass
                                                AND refobjid = 'walltrack'::regnamespace) THEN
        DROP SCHEMA walltrack;
    END IF;
END
$$;
