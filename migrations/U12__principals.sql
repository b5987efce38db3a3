-- ============================================
-- Undo of V12__principals: the database as V11 left it.
-- ============================================
-- Runs as-is: psql -v ON_ERROR_STOP=1 -1 -f U12__principals.sql
-- Users, tokens, sessions and their audit trail are dropped with the tables and their schema,
-- walltrack_auth: every server signed in with them stops at once. Config rows and their audit rows stay.
-- squawk-ignore-file ban-drop-table, ban-drop-schema, ban-drop-function, prefer-robust-stmts
-- (why: undoing V12 means dropping what V12 created, and only that; the file runs in one transaction,
--  where IF EXISTS would only hide a database that V12 never reached.)

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- api_tokens first: it refers to users. Their triggers go with them.
DROP TABLE walltrack_auth.api_tokens;
DROP TABLE walltrack_auth.users;
DROP TABLE walltrack_auth.principal_audit_log;
-- Not CASCADE: should anyone have put something else in it, the undo stops rather than drop that too.
DROP SCHEMA walltrack_auth;

DROP FUNCTION walltrack.record_principal_change();
DROP FUNCTION walltrack.refuse_principal_truncate();
DROP FUNCTION walltrack.guard_api_token();
DROP FUNCTION walltrack.stamp_user();
