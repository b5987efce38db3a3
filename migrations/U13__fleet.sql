-- ============================================
-- Undo of V13__fleet: the database as V12 left it.
-- ============================================
-- Runs as-is: psql -v ON_ERROR_STOP=1 -1 -f U13__fleet.sql
-- The fleet is dropped with its table: what each client applied is forgotten, and clients that still
-- report get an error (their settings are untouched). Config rows, principals and the logs stay.
-- squawk-ignore-file ban-drop-table, ban-drop-function, prefer-robust-stmts
-- (why: undoing V13 means dropping what V13 created, and only that; the file runs in one transaction,
--  where IF EXISTS would only hide a database that V13 never reached.)

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

DROP FUNCTION walltrack.fleet_leave(UUID, TEXT);
DROP FUNCTION walltrack.fleet_report(UUID, TEXT, TEXT, INT, TEXT, TEXT, TEXT[], REAL, JSONB, TEXT);
DROP FUNCTION walltrack.fleet_text_problem(TEXT, INT);
DROP TABLE walltrack.fleet_clients;
