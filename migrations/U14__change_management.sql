-- ============================================
-- Undo of V14__change_management: the database as V13 left it.
-- ============================================
-- Runs as-is: psql -v ON_ERROR_STOP=1 -1 -f U14__change_management.sql
-- Policies, requests, approvals, break-glass grants, schedules, events, webhooks and their deliveries are
-- dropped with their tables: drafts go live without approval again, pending schedules never run, and no
-- webhook is called any more. Config rows, their audit trail and activations, principals and the fleet stay
-- (the fleet without stale_noted_at).
-- squawk-ignore-file ban-drop-table, ban-drop-function, ban-drop-column, prefer-robust-stmts
-- (why: undoing V14 means dropping what V14 created, and only that; the file runs in one transaction,
--  where IF EXISTS would only hide a database that V14 never reached.)

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- The config tables' triggers first: nothing may fire into the tables about to go.
DO $$
DECLARE
    tbl TEXT;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['trading_config', 'scoring_config', 'discovery_config', 'cluster_config',
                               'risk_config', 'exit_config', 'api_config'] LOOP
        EXECUTE format('DROP TRIGGER %I ON walltrack.%I', 'trg_' || tbl || '_approval_gate', tbl);
        EXECUTE format('DROP TRIGGER %I ON walltrack.%I', 'trg_' || tbl || '_change_event', tbl);
        EXECUTE format('DROP TRIGGER %I ON walltrack.%I', 'trg_' || tbl || '_change_void', tbl);
        EXECUTE format('DROP TRIGGER %I ON walltrack.%I', 'trg_' || tbl || '_change_discard', tbl);
    END LOOP;
END
$$;

DROP FUNCTION walltrack.finish_delivery(BIGINT, BOOLEAN, INT, TEXT, INTERVAL);
DROP FUNCTION walltrack.claim_deliveries(INT);
DROP FUNCTION walltrack.remove_webhook(TEXT, TEXT);
DROP FUNCTION walltrack.add_webhook(TEXT, TEXT, TEXT[], TEXT, TEXT, TEXT);
DROP FUNCTION walltrack.fleet_note_stale();
DROP FUNCTION walltrack.run_due_schedules(INTERVAL, TEXT);
DROP FUNCTION walltrack.cancel_schedule(UUID, TEXT, TEXT);
DROP FUNCTION walltrack.schedule_activation(TEXT, UUID, INT, TIMESTAMPTZ, TEXT, TEXT);
DROP FUNCTION walltrack.break_glass_activate(TEXT, UUID, INT, TEXT, TEXT);
DROP FUNCTION walltrack.reject_request(UUID, TEXT, TEXT);
DROP FUNCTION walltrack.approve_request(UUID, TEXT, TEXT);
DROP FUNCTION walltrack.lock_pending_request(UUID);
DROP FUNCTION walltrack.change_request_domain(UUID);
DROP FUNCTION walltrack.request_activation(TEXT, UUID, INT, TEXT, TEXT);
DROP FUNCTION walltrack.set_approval_policy(TEXT, INT, TEXT, TEXT);
DROP FUNCTION walltrack.void_changes_of_draft();
DROP FUNCTION walltrack.record_config_live_event();
DROP FUNCTION walltrack.gate_config_activation();

-- Deliveries refer to events, approvals to requests: they go first. Their triggers go with them.
DROP TABLE walltrack.webhook_deliveries;
DROP TABLE walltrack_auth.webhooks;
DROP TABLE walltrack.change_events;
DROP TABLE walltrack.activation_schedules;
DROP TABLE walltrack.break_glass_grants;
DROP TABLE walltrack.change_approvals;
DROP TABLE walltrack.change_requests;
DROP TABLE walltrack.approval_policies;

DROP FUNCTION walltrack.fan_out_change_event();
DROP FUNCTION walltrack.refuse_direct_change_write();
DROP FUNCTION walltrack.record_change_event(TEXT, TEXT, UUID, JSONB, TEXT);
DROP FUNCTION walltrack.webhook_url_host(TEXT);
DROP FUNCTION walltrack.require_activation_privilege(REGCLASS, TEXT);
DROP FUNCTION walltrack.change_actor(TEXT);
DROP FUNCTION walltrack.change_text_problem(TEXT, INT);
DROP FUNCTION walltrack.config_settings_hash(REGCLASS, UUID);
DROP FUNCTION walltrack.config_settings_hash_of(JSONB);

ALTER TABLE walltrack.fleet_clients DROP COLUMN stale_noted_at;
