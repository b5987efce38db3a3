-- ============================================
-- V14: change management: approvals before a draft goes live, break glass, scheduled activations, an event
-- log that doubles as a webhook outbox, and stale fleet clients noted once
-- ============================================
-- Runs as-is: psql -v ON_ERROR_STOP=1 -1 -f V14__change_management.sql
-- Run it as the owner of the walltrack tables (or a superuser), as V11 to V13: the writers are theirs.
-- What it adds, for every client:
--   * walltrack.approval_policies: per domain, how many approvals a draft needs before it goes live
--     (0 to 5; 0 for every domain here, so nothing changes until a policy is set);
--   * one gate, a BEFORE UPDATE trigger on each config table, on draft -> active: with a policy of N > 0 it
--     needs a pending change request for the row at its version and settings hash, approved by N people
--     other than the requester (names compared case-insensitively and trimmed: 'Bob' and 'bob' are one
--     person), or a break-glass grant of this transaction for the row; else SQLSTATE WT005. It locks the
--     request FOR SHARE, so a rejection or approval in progress is waited for, never raced.
--     Every path obeys it (activate_config, plain UPDATE, imports, schedules). A rollback (archived ->
--     active) is not gated: it reinstates what was live before, and must stay instant;
--   * walltrack.change_requests and change_approvals: requests, and who approved or rejected them; an edit
--     of the draft (its version changes) or discarding it voids its open request and cancels its schedules.
--     The actor is declared, so the database user vouches for it: requesting, approving, rejecting,
--     scheduling and cancelling take UPDATE on the domain's config table (what activating it takes), else
--     SQLSTATE 42501;
--   * walltrack.break_glass_grants: every activation that went around the approvals, with its reason;
--   * walltrack.activation_schedules: activations to run at a time (walltrack.run_due_schedules, once
--     whatever the number of runners), themselves gated at run time; a transient error (a lock not
--     available, a serialization failure, a deadlock, a cancel) leaves one pending for the next run;
--   * walltrack.change_events: every change of the above, activations and rollbacks; append-only. Each
--     event makes a pending delivery per subscribed webhook and NOTIFY walltrack_changes '<seq>';
--   * walltrack_auth.webhooks (they hold secrets: the owner's only) and walltrack.webhook_deliveries; adding
--     or removing one is an event too (its name, URL host, events and format: never its secret or full URL);
--   * walltrack.fleet_clients.stale_noted_at: when a client was last noted stale (event client_stale).
-- The tables are written by this file's functions and triggers only (run as the owner): nothing is granted
-- on them but SELECT to PUBLIC (webhooks: nothing at all), and a write by any other role, whatever it was
-- granted, is refused. SQLSTATEs: 22023 (COLUMN names the argument), 42501 the database user may not,
-- WT001 a rule, WT002 a stale version, WT003 not found, WT005 an approval missing.
-- squawk-ignore-file prefer-robust-stmts, require-concurrent-index-creation, prefer-bigint-over-int
-- (why: the file runs in one transaction, where CONCURRENTLY cannot run and IF NOT EXISTS would only
--  hide a bad state; every table it indexes is created empty by the file itself; the INT columns count
--  approvals, attempts and HTTP statuses, and hold config versions, INTEGER in the config tables.)

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- ---------- policies ----------

CREATE TABLE walltrack.approval_policies (
    domain TEXT PRIMARY KEY,
    approvals_required INTEGER NOT NULL DEFAULT 0,
    updated_by TEXT,
    updated_at TIMESTAMPTZ,
    CONSTRAINT chk_approval_policies_domain CHECK (
        domain IN ('trading', 'scoring', 'discovery', 'cluster', 'risk', 'exit', 'api')),
    CONSTRAINT chk_approval_policies_approvals CHECK (approvals_required BETWEEN 0 AND 5)
);
COMMENT ON TABLE walltrack.approval_policies IS 'How many approvals a draft of each domain needs before it goes live (V14); written by walltrack.set_approval_policy only.';
COMMENT ON COLUMN walltrack.approval_policies.approvals_required IS '0 to 5 distinct approvers other than the requester; 0: no approval needed.';
COMMENT ON COLUMN walltrack.approval_policies.updated_by IS 'Who set it last, as declared; NULL: never set since V14.';
INSERT INTO walltrack.approval_policies (domain)
VALUES ('trading'), ('scoring'), ('discovery'), ('cluster'), ('risk'), ('exit'), ('api');

-- ---------- requests and decisions ----------

CREATE TABLE walltrack.change_requests (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    domain TEXT NOT NULL,
    config_table TEXT NOT NULL,
    config_id UUID NOT NULL,
    version INTEGER NOT NULL,
    settings_hash TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    db_user TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    created_at TIMESTAMPTZ NOT NULL DEFAULT statement_timestamp(),
    decided_at TIMESTAMPTZ,
    CONSTRAINT chk_change_requests_domain CHECK (
        domain IN ('trading', 'scoring', 'discovery', 'cluster', 'risk', 'exit', 'api')
        AND config_table = domain || '_config'),
    CONSTRAINT chk_change_requests_reason CHECK (char_length(reason) BETWEEN 1 AND 2000),
    CONSTRAINT chk_change_requests_status CHECK (status IN ('pending', 'rejected', 'applied', 'void'))
);
-- At most one open request per config row.
CREATE UNIQUE INDEX uq_change_requests_pending ON walltrack.change_requests (config_table, config_id) WHERE status = 'pending';
CREATE INDEX idx_change_requests_created ON walltrack.change_requests (created_at);
COMMENT ON TABLE walltrack.change_requests IS 'Requests to make a draft live, bound to its version and settings hash (V14).';
COMMENT ON COLUMN walltrack.change_requests.settings_hash IS 'walltrack.config_settings_hash of the draft when requested: what the approvers saw.';
COMMENT ON COLUMN walltrack.change_requests.requested_by IS 'Who asked, as declared (walltrack.actor); they cannot approve it.';
COMMENT ON COLUMN walltrack.change_requests.db_user IS 'The database user of the session that asked.';
COMMENT ON COLUMN walltrack.change_requests.status IS 'pending, rejected, applied (the draft went live) or void (the draft changed, was discarded, or went live at another version).';

CREATE TABLE walltrack.change_approvals (
    request_id UUID NOT NULL REFERENCES walltrack.change_requests (id),
    approver TEXT NOT NULL,
    db_user TEXT NOT NULL,
    decision TEXT NOT NULL,
    comment TEXT,
    at TIMESTAMPTZ NOT NULL DEFAULT statement_timestamp(),
    PRIMARY KEY (request_id, approver),
    CONSTRAINT chk_change_approvals_decision CHECK (decision IN ('approve', 'reject')),
    CONSTRAINT chk_change_approvals_comment CHECK (char_length(comment) <= 2000)
);
-- One decision per person: 'Bob' and 'bob ' are the same person, as everywhere a requester meets an approver.
CREATE UNIQUE INDEX uq_change_approvals_person ON walltrack.change_approvals (request_id, lower(btrim(approver)));
COMMENT ON TABLE walltrack.change_approvals IS 'Each person''s decision on a change request (V14); one per person (names compared case-insensitively, trimmed).';

-- ---------- break glass ----------

CREATE TABLE walltrack.break_glass_grants (
    txid BIGINT NOT NULL,
    config_table TEXT NOT NULL,
    config_id UUID NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    db_user TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL DEFAULT statement_timestamp(),
    PRIMARY KEY (txid, config_table, config_id)
);
COMMENT ON TABLE walltrack.break_glass_grants IS 'Activations that went around the approvals (walltrack.break_glass_activate), append-only (V14).';
COMMENT ON COLUMN walltrack.break_glass_grants.txid IS 'txid_current() of the transaction that activated: the grant holds for it only.';

-- ---------- schedules ----------

CREATE TABLE walltrack.activation_schedules (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    domain TEXT NOT NULL,
    config_table TEXT NOT NULL,
    config_id UUID NOT NULL,
    version INTEGER NOT NULL,
    settings_hash TEXT NOT NULL,
    run_at TIMESTAMPTZ NOT NULL,
    created_by TEXT NOT NULL,
    db_user TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    outcome TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT statement_timestamp(),
    finished_at TIMESTAMPTZ,
    finished_by TEXT,
    CONSTRAINT chk_activation_schedules_domain CHECK (
        domain IN ('trading', 'scoring', 'discovery', 'cluster', 'risk', 'exit', 'api')
        AND config_table = domain || '_config'),
    CONSTRAINT chk_activation_schedules_reason CHECK (char_length(reason) BETWEEN 1 AND 2000),
    CONSTRAINT chk_activation_schedules_status CHECK (status IN ('pending', 'done', 'failed', 'missed', 'cancelled'))
);
CREATE INDEX idx_activation_schedules_due ON walltrack.activation_schedules (run_at) WHERE status = 'pending';
CREATE INDEX idx_activation_schedules_row ON walltrack.activation_schedules (config_table, config_id) WHERE status = 'pending';
COMMENT ON TABLE walltrack.activation_schedules IS 'Activations to run at a time (V14); walltrack.run_due_schedules runs each once.';
COMMENT ON COLUMN walltrack.activation_schedules.db_user IS 'The database user that scheduled it; it must still be allowed to activate at run time.';
COMMENT ON COLUMN walltrack.activation_schedules.outcome IS 'What happened: the activation, the error, or why it was cancelled or missed.';

-- ---------- events: the log of changes, and the webhooks' outbox ----------

CREATE TABLE walltrack.change_events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    domain TEXT,
    subject UUID,
    actor TEXT NOT NULL,
    db_user TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL DEFAULT statement_timestamp(),
    payload JSONB NOT NULL DEFAULT '{}',
    CONSTRAINT chk_change_events_kind CHECK (kind IN (
        'policy_changed', 'request_created', 'request_approved', 'request_rejected', 'request_voided',
        'request_applied', 'activated', 'rolled_back', 'break_glass', 'schedule_created', 'schedule_cancelled',
        'schedule_executed', 'schedule_failed', 'schedule_missed', 'client_stale', 'webhook_added',
        'webhook_removed')),
    CONSTRAINT chk_change_events_payload CHECK (jsonb_typeof(payload) = 'object')
);
CREATE INDEX idx_change_events_kind ON walltrack.change_events (kind, seq);
COMMENT ON TABLE walltrack.change_events IS 'Every change-management event, activations and rollbacks included, append-only (V14); each makes deliveries for the webhooks subscribed to its kind.';
COMMENT ON COLUMN walltrack.change_events.subject IS 'What it is about: the request, the schedule, the config row, or the fleet client.';
COMMENT ON COLUMN walltrack.change_events.actor IS 'Who, as declared (walltrack.actor), else the database user.';
COMMENT ON COLUMN walltrack.change_events.payload IS 'JSON object with at least domain (or null) and the ids it is about.';

CREATE TABLE walltrack_auth.webhooks (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT[] NOT NULL,
    secret TEXT NOT NULL,
    format TEXT NOT NULL DEFAULT 'json',
    enabled BOOLEAN NOT NULL DEFAULT true,
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT statement_timestamp(),
    CONSTRAINT chk_webhooks_name CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    CONSTRAINT chk_webhooks_url CHECK (char_length(url) <= 2000 AND url ~* '^https?://[^[:space:]/?#]+([/?#][^[:space:]]*)?$'),
    CONSTRAINT chk_webhooks_events CHECK (cardinality(events) >= 1),
    CONSTRAINT chk_webhooks_secret CHECK (char_length(secret) BETWEEN 16 AND 200),
    CONSTRAINT chk_webhooks_format CHECK (format IN ('json', 'slack', 'discord'))
);
CREATE UNIQUE INDEX uq_webhooks_name ON walltrack_auth.webhooks (lower(name));
COMMENT ON TABLE walltrack_auth.webhooks IS 'Where change events are POSTed, signed with the secret (V14); for the owner only.';
COMMENT ON COLUMN walltrack_auth.webhooks.events IS 'The event kinds it receives, or ''*'' for all.';
COMMENT ON COLUMN walltrack_auth.webhooks.secret IS 'The HMAC-SHA256 key of X-Walltrack-Signature.';

CREATE TABLE walltrack.webhook_deliveries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id UUID NOT NULL,
    webhook_name TEXT NOT NULL,
    event_seq BIGINT NOT NULL REFERENCES walltrack.change_events (seq),
    kind TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT statement_timestamp(),
    last_status INTEGER,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT statement_timestamp(),
    delivered_at TIMESTAMPTZ,
    CONSTRAINT chk_webhook_deliveries_status CHECK (status IN ('pending', 'succeeded', 'failed')),
    CONSTRAINT chk_webhook_deliveries_attempts CHECK (attempts BETWEEN 0 AND 8)
);
CREATE INDEX idx_webhook_deliveries_due ON walltrack.webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX idx_webhook_deliveries_event ON walltrack.webhook_deliveries (event_seq);
CREATE INDEX idx_webhook_deliveries_webhook ON walltrack.webhook_deliveries (webhook_id, id);
COMMENT ON TABLE walltrack.webhook_deliveries IS 'One per event and subscribed webhook (V14); kept when the webhook is removed (webhook_name copied).';
COMMENT ON COLUMN walltrack.webhook_deliveries.next_attempt_at IS 'When it is due; claiming pushes it 60 s ahead as a lease.';

-- ---------- the fleet: stale clients noted once ----------

ALTER TABLE walltrack.fleet_clients ADD COLUMN stale_noted_at TIMESTAMPTZ;
COMMENT ON COLUMN walltrack.fleet_clients.stale_noted_at IS 'When walltrack.fleet_note_stale last noted it stale (event client_stale); again only once heard from since.';

-- ---------- helpers ----------

-- What bots read of a row, hashed: to_jsonb(row) without the lifecycle columns, hex SHA-256.
CREATE FUNCTION walltrack.config_settings_hash_of(config_row JSONB) RETURNS TEXT
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT encode(sha256(convert_to((config_row - ARRAY['id', 'version', 'status', 'name', 'description', 'created_at',
                                                        'created_by', 'updated_at', 'updated_by'])::text, 'UTF8')), 'hex')
$$;

-- The hash of a config row now; NULL when there is no such row.
CREATE FUNCTION walltrack.config_settings_hash(tbl REGCLASS, id UUID) RETURNS TEXT
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    this_row JSONB;
BEGIN
    IF tbl IS NULL OR tbl NOT IN ('walltrack.trading_config'::regclass, 'walltrack.scoring_config'::regclass,
                                  'walltrack.discovery_config'::regclass, 'walltrack.cluster_config'::regclass,
                                  'walltrack.risk_config'::regclass, 'walltrack.exit_config'::regclass,
                                  'walltrack.api_config'::regclass) THEN
        RAISE EXCEPTION 'tbl must be one of the walltrack config tables, not %', coalesce(tbl::text, 'null')
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'tbl';
    END IF;
    EXECUTE format('SELECT to_jsonb(t) FROM %s AS t WHERE t.id = $1', tbl) INTO this_row USING config_settings_hash.id;
    RETURN CASE WHEN this_row IS NOT NULL THEN walltrack.config_settings_hash_of(this_row) END;
END;
$$;

-- Why a reason or comment cannot be stored (NULL: it can): 1 to max_length characters, not only blanks.
CREATE FUNCTION walltrack.change_text_problem(value TEXT, max_length INT) RETURNS TEXT
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN value IS NULL OR value !~ '[^[:space:]]' THEN 'is required (not blank)'
        WHEN char_length(value) > max_length THEN format('must be at most %s characters', max_length)
    END
$$;

CREATE FUNCTION walltrack.change_actor(actor TEXT) RETURNS TEXT
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT left(coalesce(nullif(actor, ''), walltrack.config_actor()), 100)
$$;

-- The actor is declared, so the database user vouches for it: requesting, approving, rejecting and cancelling
-- a change of a domain takes what activating it takes, UPDATE on its config table (schedules: at run time too).
-- Called by the SECURITY DEFINER front doors, where session_user is still whoever logged in.
CREATE FUNCTION walltrack.require_activation_privilege(tbl REGCLASS, doing TEXT) RETURNS VOID
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT has_table_privilege(session_user, tbl, 'UPDATE') THEN
        RAISE EXCEPTION 'database user % may not activate % (no UPDATE privilege on it), so cannot %',
            session_user, tbl, doing
            USING ERRCODE = 'insufficient_privilege',
            HINT = 'Connect as a database user that may edit and activate this domain''s config.';
    END IF;
END;
$$;

-- The host of a webhook URL, lower-cased, without user info or port: what events say of a webhook (the rest
-- of a URL, its path, query or user info, may hold a token).
CREATE FUNCTION walltrack.webhook_url_host(url TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT lower(regexp_replace(regexp_replace(substring(url FROM '^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)'),
                                               '^.*@', ''), ':[0-9]*$', ''))
$$;

-- One event; only this file's functions and triggers call it (EXECUTE revoked from PUBLIC).
CREATE FUNCTION walltrack.record_change_event(event_kind TEXT, event_domain TEXT, event_subject UUID,
                                              event_payload JSONB, event_actor TEXT DEFAULT NULL)
RETURNS BIGINT LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO walltrack.change_events (kind, domain, subject, actor, db_user, payload)
    VALUES (event_kind, event_domain, event_subject, walltrack.change_actor(event_actor), session_user,
            coalesce(event_payload, '{}'))
    RETURNING seq
$$;

-- ---------- nobody writes the tables but the functions below ----------

-- Whatever was granted (a GRANT INSERT by mistake, default privileges), only the tables' owner writes them,
-- which only this file's SECURITY DEFINER functions and triggers do for anyone else.
CREATE FUNCTION walltrack.refuse_direct_change_write() RETURNS TRIGGER
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF (SELECT relowner FROM pg_class WHERE oid = TG_RELID) IS DISTINCT FROM (SELECT oid FROM pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'rows of %.% are written by the walltrack change functions only', TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege',
            HINT = 'Call walltrack.request_activation, approve_request, schedule_activation and the like instead.';
    END IF;
    RETURN CASE WHEN TG_LEVEL = 'STATEMENT' THEN NULL WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END;
$$;

CREATE TRIGGER trg_approval_policies_origin BEFORE INSERT OR UPDATE OR DELETE ON walltrack.approval_policies
    FOR EACH ROW EXECUTE FUNCTION walltrack.refuse_direct_change_write();
CREATE TRIGGER trg_change_requests_origin BEFORE INSERT OR UPDATE OR DELETE ON walltrack.change_requests
    FOR EACH ROW EXECUTE FUNCTION walltrack.refuse_direct_change_write();
CREATE TRIGGER trg_change_approvals_origin BEFORE INSERT OR UPDATE OR DELETE ON walltrack.change_approvals
    FOR EACH ROW EXECUTE FUNCTION walltrack.refuse_direct_change_write();
CREATE TRIGGER trg_break_glass_grants_origin BEFORE INSERT ON walltrack.break_glass_grants
    FOR EACH ROW EXECUTE FUNCTION walltrack.refuse_direct_change_write();
CREATE TRIGGER trg_activation_schedules_origin BEFORE INSERT OR UPDATE OR DELETE ON walltrack.activation_schedules
    FOR EACH ROW EXECUTE FUNCTION walltrack.refuse_direct_change_write();
CREATE TRIGGER trg_change_events_origin BEFORE INSERT ON walltrack.change_events
    FOR EACH ROW EXECUTE FUNCTION walltrack.refuse_direct_change_write();
CREATE TRIGGER trg_webhooks_origin BEFORE INSERT OR UPDATE OR DELETE ON walltrack_auth.webhooks
    FOR EACH ROW EXECUTE FUNCTION walltrack.refuse_direct_change_write();
CREATE TRIGGER trg_webhook_deliveries_origin BEFORE INSERT OR UPDATE OR DELETE ON walltrack.webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION walltrack.refuse_direct_change_write();

-- A TRUNCATE fires no row trigger.
DO $$
DECLARE
    rel TEXT;
BEGIN
    FOREACH rel IN ARRAY ARRAY['walltrack.approval_policies', 'walltrack.change_requests', 'walltrack.change_approvals',
                               'walltrack.activation_schedules', 'walltrack_auth.webhooks', 'walltrack.webhook_deliveries'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %s FOR EACH STATEMENT'
                       ' EXECUTE FUNCTION walltrack.refuse_direct_change_write()',
                       'trg_' || split_part(rel, '.', 2) || '_origin_truncate', rel);
    END LOOP;
END
$$;

-- The events and the break-glass grants are a log: never changed nor removed, by the owner neither.
CREATE TRIGGER trg_change_events_append_only BEFORE UPDATE OR DELETE ON walltrack.change_events
    FOR EACH ROW EXECUTE FUNCTION walltrack.refuse_log_change();
CREATE TRIGGER trg_change_events_no_truncate BEFORE TRUNCATE ON walltrack.change_events
    FOR EACH STATEMENT EXECUTE FUNCTION walltrack.refuse_log_change();
CREATE TRIGGER trg_break_glass_grants_append_only BEFORE UPDATE OR DELETE ON walltrack.break_glass_grants
    FOR EACH ROW EXECUTE FUNCTION walltrack.refuse_log_change();
CREATE TRIGGER trg_break_glass_grants_no_truncate BEFORE TRUNCATE ON walltrack.break_glass_grants
    FOR EACH STATEMENT EXECUTE FUNCTION walltrack.refuse_log_change();

-- ---------- the outbox: each event, a delivery per subscribed webhook, and a NOTIFY ----------

CREATE FUNCTION walltrack.fan_out_change_event() RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_TABLE_SCHEMA <> 'walltrack' OR TG_TABLE_NAME <> 'change_events' THEN
        RAISE EXCEPTION '% serves walltrack.change_events only, not %.%', TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'WT001';
    END IF;
    INSERT INTO walltrack.webhook_deliveries (webhook_id, webhook_name, event_seq, kind)
    SELECT w.id, w.name, NEW.seq, NEW.kind
    FROM walltrack_auth.webhooks AS w
    WHERE w.enabled AND (NEW.kind = ANY (w.events) OR '*' = ANY (w.events))
    ORDER BY w.name;
    PERFORM pg_notify('walltrack_changes', NEW.seq::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_change_events_fan_out AFTER INSERT ON walltrack.change_events
    FOR EACH ROW EXECUTE FUNCTION walltrack.fan_out_change_event();

-- ---------- the gate: draft -> active ----------

-- SECURITY DEFINER: it reads the change tables whoever activates. It fires first among the row triggers
-- (by name), so OLD is the row as it was reviewed.
CREATE FUNCTION walltrack.gate_config_activation() RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    row_domain TEXT := regexp_replace(TG_TABLE_NAME, '_config$', '');
    short_id TEXT := left(OLD.id::text, 8);
    required INT;
    given INT;
    open_request walltrack.change_requests;
BEGIN
    IF TG_TABLE_SCHEMA <> 'walltrack' OR TG_TABLE_NAME NOT IN ('trading_config', 'scoring_config', 'discovery_config',
                                                                'cluster_config', 'risk_config', 'exit_config', 'api_config') THEN
        RAISE EXCEPTION '% gates the walltrack config tables only, not %.%', TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'WT001';
    END IF;
    SELECT p.approvals_required INTO required FROM walltrack.approval_policies AS p WHERE p.domain = row_domain;
    IF coalesce(required, 0) = 0 THEN
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT FROM walltrack.break_glass_grants AS g
               WHERE g.txid = txid_current() AND g.config_table = TG_TABLE_NAME AND g.config_id = OLD.id) THEN
        RETURN NEW;
    END IF;
    -- The request locked FOR SHARE: an approval or a rejection (they lock it FOR UPDATE) in progress is waited
    -- for, and none can start until this transaction ends. Then read again, as it is now: a rejection committed
    -- while this waited leaves no pending request, and the approvals counted below are those committed.
    SELECT r.* INTO open_request
    FROM walltrack.change_requests AS r
    WHERE r.config_table = TG_TABLE_NAME AND r.config_id = OLD.id AND r.status = 'pending'
    FOR SHARE;
    IF FOUND THEN
        SELECT r.* INTO open_request FROM walltrack.change_requests AS r WHERE r.id = open_request.id;
    END IF;
    IF open_request.id IS NULL OR open_request.status <> 'pending' OR open_request.version <> OLD.version
       OR open_request.settings_hash <> walltrack.config_settings_hash_of(to_jsonb(OLD)) THEN
        RAISE EXCEPTION '% needs % approval% before draft % v% goes live: no approved request for v%',
            row_domain, required, CASE WHEN required = 1 THEN '' ELSE 's' END, short_id, OLD.version, OLD.version
            USING ERRCODE = 'WT005', TABLE = TG_TABLE_NAME,
            HINT = format('Request approval first: walltrack-config request %s %s --reason "..."; then %s other '
                          'operator%s approve%s it (walltrack-config approve REQUEST).', row_domain, short_id, required,
                          CASE WHEN required = 1 THEN '' ELSE 's' END, CASE WHEN required = 1 THEN 's' ELSE '' END);
    END IF;
    -- People, not spellings: 'Bob' and 'bob' count once, and neither is 'BOB ' who asked.
    SELECT count(DISTINCT lower(btrim(a.approver))) INTO given FROM walltrack.change_approvals AS a
    WHERE a.request_id = open_request.id AND a.decision = 'approve'
      AND lower(btrim(a.approver)) <> lower(btrim(open_request.requested_by));
    IF given < required THEN
        RAISE EXCEPTION '% needs % approval% before draft % v% goes live: % given (request % pending)',
            row_domain, required, CASE WHEN required = 1 THEN '' ELSE 's' END, short_id, OLD.version, given,
            left(open_request.id::text, 8)
            USING ERRCODE = 'WT005', TABLE = TG_TABLE_NAME,
            HINT = format('Another operator (not %s) approves it: walltrack-config approve %s', open_request.requested_by,
                          open_request.id);
    END IF;
    RETURN NEW;
END;
$$;

-- ---------- after a row went live: the event, and its request applied ----------

CREATE FUNCTION walltrack.record_config_live_event() RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    row_domain TEXT := regexp_replace(TG_TABLE_NAME, '_config$', '');
    activation BIGINT;
    old_hash TEXT;
    running TEXT := coalesce(current_setting('walltrack.running_schedule', true), '');
    closed RECORD;
BEGIN
    IF TG_TABLE_SCHEMA <> 'walltrack' OR TG_TABLE_NAME NOT IN ('trading_config', 'scoring_config', 'discovery_config',
                                                                'cluster_config', 'risk_config', 'exit_config', 'api_config') THEN
        RAISE EXCEPTION '% records the walltrack config tables only, not %.%', TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'WT001';
    END IF;
    SELECT max(a.seq) INTO activation FROM walltrack.config_activations AS a
    WHERE a.config_table = TG_TABLE_NAME AND a.config_id = NEW.id;
    PERFORM walltrack.record_change_event(
        CASE WHEN OLD.status = 'draft' THEN 'activated' ELSE 'rolled_back' END, row_domain, NEW.id,
        jsonb_build_object('domain', row_domain, 'id', NEW.id, 'name', NEW.name, 'version', NEW.version,
                           'reason', nullif(current_setting('walltrack.reason', true), ''), 'activation', activation));
    IF OLD.status <> 'draft' THEN
        RETURN NULL;
    END IF;
    -- Its open request: applied when it is for what went live, else void.
    old_hash := walltrack.config_settings_hash_of(to_jsonb(OLD));
    FOR closed IN
        UPDATE walltrack.change_requests AS r
        SET status = CASE WHEN r.version = OLD.version AND r.settings_hash = old_hash THEN 'applied' ELSE 'void' END,
            decided_at = statement_timestamp()
        WHERE r.config_table = TG_TABLE_NAME AND r.config_id = OLD.id AND r.status = 'pending'
        RETURNING r.id, r.status, r.version
    LOOP
        PERFORM walltrack.record_change_event(
            CASE WHEN closed.status = 'applied' THEN 'request_applied' ELSE 'request_voided' END, row_domain, closed.id,
            jsonb_build_object('domain', row_domain, 'request', closed.id, 'id', OLD.id, 'version', closed.version,
                               'activation', activation)
            || CASE WHEN closed.status = 'void'
                    THEN jsonb_build_object('why', format('the draft went live at v%s', OLD.version)) ELSE '{}' END);
    END LOOP;
    -- Its other pending schedules have nothing left to activate.
    FOR closed IN
        UPDATE walltrack.activation_schedules AS s
        SET status = 'cancelled', outcome = format('the draft went live otherwise (activation %s)', activation),
            finished_at = clock_timestamp(), finished_by = walltrack.config_actor()
        WHERE s.config_table = TG_TABLE_NAME AND s.config_id = OLD.id AND s.status = 'pending' AND s.id::text <> running
        RETURNING s.id, s.version, s.run_at, s.outcome
    LOOP
        PERFORM walltrack.record_change_event('schedule_cancelled', row_domain, closed.id,
            jsonb_build_object('domain', row_domain, 'schedule', closed.id, 'id', OLD.id, 'version', closed.version,
                               'run_at', closed.run_at, 'outcome', closed.outcome));
    END LOOP;
    RETURN NULL;
END;
$$;

-- ---------- a draft edited or discarded: its request void, its schedules cancelled ----------

CREATE FUNCTION walltrack.void_changes_of_draft() RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    row_domain TEXT := regexp_replace(TG_TABLE_NAME, '_config$', '');
    why TEXT;
    closed RECORD;
BEGIN
    IF TG_TABLE_SCHEMA <> 'walltrack' OR TG_TABLE_NAME NOT IN ('trading_config', 'scoring_config', 'discovery_config',
                                                                'cluster_config', 'risk_config', 'exit_config', 'api_config') THEN
        RAISE EXCEPTION '% serves the walltrack config tables only, not %.%', TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'WT001';
    END IF;
    why := CASE WHEN TG_OP = 'DELETE' THEN 'the draft was discarded'
                ELSE format('the draft was edited (v%s → v%s)', OLD.version, NEW.version) END;
    FOR closed IN
        UPDATE walltrack.change_requests AS r SET status = 'void', decided_at = statement_timestamp()
        WHERE r.config_table = TG_TABLE_NAME AND r.config_id = OLD.id AND r.status = 'pending'
        RETURNING r.id, r.version
    LOOP
        PERFORM walltrack.record_change_event('request_voided', row_domain, closed.id,
            jsonb_build_object('domain', row_domain, 'request', closed.id, 'id', OLD.id, 'version', closed.version,
                               'why', why));
    END LOOP;
    FOR closed IN
        UPDATE walltrack.activation_schedules AS s
        SET status = 'cancelled', outcome = why, finished_at = clock_timestamp(), finished_by = walltrack.config_actor()
        WHERE s.config_table = TG_TABLE_NAME AND s.config_id = OLD.id AND s.status = 'pending'
        RETURNING s.id, s.version, s.run_at
    LOOP
        PERFORM walltrack.record_change_event('schedule_cancelled', row_domain, closed.id,
            jsonb_build_object('domain', row_domain, 'schedule', closed.id, 'id', OLD.id, 'version', closed.version,
                               'run_at', closed.run_at, 'outcome', why));
    END LOOP;
    RETURN NULL;
END;
$$;

-- Row triggers on every config table. The gate's name sorts before guard, single_active and version (V8,
-- V9), so it sees the row as it was; the event's after activation (V11), whose sequence it reports.
DO $$
DECLARE
    tbl TEXT;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['trading_config', 'scoring_config', 'discovery_config', 'cluster_config',
                               'risk_config', 'exit_config', 'api_config'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON walltrack.%I FOR EACH ROW'
                       ' WHEN (OLD.status = ''draft'' AND NEW.status = ''active'')'
                       ' EXECUTE FUNCTION walltrack.gate_config_activation()', 'trg_' || tbl || '_approval_gate', tbl);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON walltrack.%I FOR EACH ROW'
                       ' WHEN (NEW.status = ''active'' AND OLD.status IN (''draft'', ''archived''))'
                       ' EXECUTE FUNCTION walltrack.record_config_live_event()', 'trg_' || tbl || '_change_event', tbl);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON walltrack.%I FOR EACH ROW'
                       ' WHEN (OLD.status = ''draft'' AND NEW.status = ''draft'' AND NEW.version <> OLD.version)'
                       ' EXECUTE FUNCTION walltrack.void_changes_of_draft()', 'trg_' || tbl || '_change_void', tbl);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON walltrack.%I FOR EACH ROW'
                       ' WHEN (OLD.status = ''draft'')'
                       ' EXECUTE FUNCTION walltrack.void_changes_of_draft()', 'trg_' || tbl || '_change_discard', tbl);
    END LOOP;
END
$$;

-- ---------- policies ----------

CREATE FUNCTION walltrack.set_approval_policy(domain TEXT, approvals INT, actor TEXT DEFAULT NULL,
                                              reason TEXT DEFAULT NULL)
RETURNS INT LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    the_domain TEXT := set_approval_policy.domain;
    tbl REGCLASS := walltrack.config_table(the_domain);
    who TEXT := walltrack.change_actor(actor);
    previous INT;
BEGIN
    IF approvals IS NULL OR approvals NOT BETWEEN 0 AND 5 THEN
        RAISE EXCEPTION 'approvals must be 0 to 5, not %', coalesce(approvals::text, 'null')
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'approvals';
    END IF;
    IF char_length(reason) > 2000 THEN
        RAISE EXCEPTION 'reason must be at most 2000 characters' USING ERRCODE = 'invalid_parameter_value', COLUMN = 'reason';
    END IF;
    PERFORM walltrack.lock_config_writes();
    SELECT p.approvals_required INTO previous FROM walltrack.approval_policies AS p WHERE p.domain = the_domain FOR UPDATE;
    IF previous = approvals THEN
        RETURN approvals;
    END IF;
    UPDATE walltrack.approval_policies AS p
    SET approvals_required = approvals, updated_by = who, updated_at = statement_timestamp()
    WHERE p.domain = the_domain;
    PERFORM walltrack.record_change_event('policy_changed', the_domain, NULL,
        jsonb_build_object('domain', the_domain, 'approvals', approvals, 'previous', previous, 'reason', reason), who);
    RETURN approvals;
END;
$$;

-- ---------- requests ----------

-- Ask for approval of a draft at the version the caller reviewed.
CREATE FUNCTION walltrack.request_activation(domain TEXT, draft_id UUID, expected_version INT, actor TEXT, reason TEXT)
RETURNS UUID LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    the_domain TEXT := request_activation.domain;
    tbl REGCLASS := walltrack.config_table(the_domain);
    who TEXT := walltrack.change_actor(actor);
    problem TEXT := walltrack.change_text_problem(reason, 2000);
    row_status walltrack.config_status;
    current_version INT;
    open_request RECORD;
    new_id UUID;
BEGIN
    IF draft_id IS NULL THEN
        RAISE EXCEPTION 'draft_id is required' USING ERRCODE = 'invalid_parameter_value', COLUMN = 'draft_id';
    END IF;
    IF expected_version IS NULL THEN
        RAISE EXCEPTION 'expected_version is required: the version you reviewed'
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'expected_version';
    END IF;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'reason %', problem USING ERRCODE = 'invalid_parameter_value', COLUMN = 'reason';
    END IF;
    PERFORM walltrack.require_activation_privilege(tbl, 'request its activation');
    row_status := walltrack.config_lock_row(tbl, draft_id);
    IF row_status <> 'draft' THEN
        RAISE EXCEPTION 'row % of % is %, only a draft needs approval', draft_id, tbl, row_status USING ERRCODE = 'WT001',
            HINT = 'Clone it into a draft, and request approval of the draft.';
    END IF;
    EXECUTE format('SELECT version FROM %s WHERE id = $1', tbl) INTO current_version USING draft_id;
    IF current_version <> expected_version THEN
        RAISE EXCEPTION 'draft changed since you reviewed it (v% → v%); review again', expected_version, current_version
            USING ERRCODE = 'WT002', HINT = 'Show the draft again and request approval of the version you see.';
    END IF;
    SELECT r.id, r.version INTO open_request FROM walltrack.change_requests AS r
    WHERE r.config_table = the_domain || '_config' AND r.config_id = draft_id AND r.status = 'pending' FOR UPDATE;
    IF FOUND THEN
        IF open_request.version >= current_version THEN
            RAISE EXCEPTION 'draft % of % has a pending request already (request %)', draft_id, tbl, open_request.id
                USING ERRCODE = 'WT001', HINT = 'Approve or reject that one; an edit of the draft voids it.';
        END IF;
        UPDATE walltrack.change_requests AS r SET status = 'void', decided_at = statement_timestamp()
        WHERE r.id = open_request.id;
        PERFORM walltrack.record_change_event('request_voided', the_domain, open_request.id,
            jsonb_build_object('domain', the_domain, 'request', open_request.id, 'id', draft_id,
                               'version', open_request.version, 'why', 'a request for a newer version replaced it'), who);
    END IF;
    INSERT INTO walltrack.change_requests (domain, config_table, config_id, version, settings_hash, requested_by, db_user, reason)
    VALUES (the_domain, the_domain || '_config', draft_id, current_version, walltrack.config_settings_hash(tbl, draft_id),
            who, session_user, reason)
    RETURNING id INTO new_id;
    PERFORM walltrack.record_change_event('request_created', the_domain, new_id,
        jsonb_build_object('domain', the_domain, 'request', new_id, 'id', draft_id, 'version', current_version,
                           'reason', reason,
                           'required', (SELECT p.approvals_required FROM walltrack.approval_policies AS p
                                        WHERE p.domain = the_domain)), who);
    RETURN new_id;
END;
$$;

-- The request's pending row, locked; WT003 when there is none, WT001 when it is closed.
CREATE FUNCTION walltrack.lock_pending_request(request_id UUID) RETURNS walltrack.change_requests
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    this_row walltrack.change_requests;
BEGIN
    IF request_id IS NULL THEN
        RAISE EXCEPTION 'request_id is required' USING ERRCODE = 'invalid_parameter_value', COLUMN = 'request_id';
    END IF;
    SELECT r.* INTO this_row FROM walltrack.change_requests AS r WHERE r.id = lock_pending_request.request_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no change request %', request_id USING ERRCODE = 'WT003',
            HINT = 'List the requests (walltrack-config requests) to find the id.';
    END IF;
    IF this_row.status <> 'pending' THEN
        RAISE EXCEPTION 'request % is %, not pending', request_id, this_row.status USING ERRCODE = 'WT001',
            HINT = CASE this_row.status
                WHEN 'applied' THEN 'The draft went live already.'
                WHEN 'void' THEN 'The draft changed (or went away) since; request approval of it again.'
                ELSE 'It was rejected; request approval again once the draft is fixed.' END;
    END IF;
    RETURN this_row;
END;
$$;

-- The domain of a request, for the privilege check made before its row is locked (a role that may not
-- decide cannot hold the lock either); WT003 when there is no such request.
CREATE FUNCTION walltrack.change_request_domain(request_id UUID) RETURNS TEXT
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found_domain TEXT;
BEGIN
    IF request_id IS NULL THEN
        RAISE EXCEPTION 'request_id is required' USING ERRCODE = 'invalid_parameter_value', COLUMN = 'request_id';
    END IF;
    SELECT r.domain INTO found_domain FROM walltrack.change_requests AS r WHERE r.id = change_request_domain.request_id;
    IF found_domain IS NULL THEN
        RAISE EXCEPTION 'no change request %', request_id USING ERRCODE = 'WT003',
            HINT = 'List the requests (walltrack-config requests) to find the id.';
    END IF;
    RETURN found_domain;
END;
$$;

-- One approval by the declared actor, not the requester; a second by the same person changes nothing.
-- Names are compared case-insensitively and trimmed: 'Alice' cannot approve what 'alice' asked, and 'Bob' and
-- 'bob' are one approver. Returns how many distinct people approved it now.
CREATE FUNCTION walltrack.approve_request(request_id UUID, actor TEXT, comment TEXT DEFAULT NULL)
RETURNS INT LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    who TEXT := walltrack.change_actor(actor);
    req walltrack.change_requests;
    already TEXT;
    given INT;
BEGIN
    IF char_length(comment) > 2000 THEN
        RAISE EXCEPTION 'comment must be at most 2000 characters' USING ERRCODE = 'invalid_parameter_value', COLUMN = 'comment';
    END IF;
    PERFORM walltrack.require_activation_privilege(
        walltrack.config_table(walltrack.change_request_domain(request_id)), 'approve its change requests');
    req := walltrack.lock_pending_request(request_id);
    IF lower(btrim(who)) = lower(btrim(req.requested_by)) THEN
        RAISE EXCEPTION '% requested %, and cannot approve their own request', who, req.id USING ERRCODE = 'WT001',
            HINT = 'Another operator approves it.';
    END IF;
    SELECT a.decision INTO already FROM walltrack.change_approvals AS a
    WHERE a.request_id = req.id AND lower(btrim(a.approver)) = lower(btrim(who));
    IF already IS NULL THEN
        INSERT INTO walltrack.change_approvals (request_id, approver, db_user, decision, comment)
        VALUES (req.id, who, session_user, 'approve', nullif(comment, ''));
    END IF;
    SELECT count(DISTINCT lower(btrim(a.approver))) INTO given FROM walltrack.change_approvals AS a
    WHERE a.request_id = req.id AND a.decision = 'approve'
      AND lower(btrim(a.approver)) <> lower(btrim(req.requested_by));
    IF already IS NULL THEN
        PERFORM walltrack.record_change_event('request_approved', req.domain, req.id,
            jsonb_build_object('domain', req.domain, 'request', req.id, 'id', req.config_id, 'version', req.version,
                               'approver', who, 'approvals', given, 'comment', nullif(comment, ''),
                               'required', (SELECT p.approvals_required FROM walltrack.approval_policies AS p
                                            WHERE p.domain = req.domain)), who);
    END IF;
    RETURN given;
END;
$$;

-- A rejection closes the request; it needs a comment. The requester may reject (withdraw) their own.
CREATE FUNCTION walltrack.reject_request(request_id UUID, actor TEXT, comment TEXT)
RETURNS VOID LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    who TEXT := walltrack.change_actor(actor);
    problem TEXT := walltrack.change_text_problem(comment, 2000);
    req walltrack.change_requests;
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'comment %: say why it is rejected', problem USING ERRCODE = 'invalid_parameter_value', COLUMN = 'comment';
    END IF;
    PERFORM walltrack.require_activation_privilege(
        walltrack.config_table(walltrack.change_request_domain(request_id)), 'reject its change requests');
    req := walltrack.lock_pending_request(request_id);
    UPDATE walltrack.change_approvals AS a
    SET decision = 'reject', comment = reject_request.comment, db_user = session_user, at = statement_timestamp()
    WHERE a.request_id = req.id AND lower(btrim(a.approver)) = lower(btrim(who));
    IF NOT FOUND THEN
        INSERT INTO walltrack.change_approvals (request_id, approver, db_user, decision, comment)
        VALUES (req.id, who, session_user, 'reject', reject_request.comment);
    END IF;
    UPDATE walltrack.change_requests AS r SET status = 'rejected', decided_at = statement_timestamp() WHERE r.id = req.id;
    PERFORM walltrack.record_change_event('request_rejected', req.domain, req.id,
        jsonb_build_object('domain', req.domain, 'request', req.id, 'id', req.config_id, 'version', req.version,
                           'by', who, 'comment', reject_request.comment), who);
END;
$$;

-- ---------- break glass ----------

-- Around the approvals, with a reason, recorded; EXECUTE for the owner (and whom it grants it to) only.
CREATE FUNCTION walltrack.break_glass_activate(domain TEXT, draft_id UUID, expected_version INT, actor TEXT, reason TEXT)
RETURNS UUID LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    the_domain TEXT := break_glass_activate.domain;
    tbl REGCLASS := walltrack.config_table(the_domain);
    who TEXT := walltrack.change_actor(actor);
    problem TEXT := walltrack.change_text_problem(reason, 2000);
    activation BIGINT;
    live_version INT;
BEGIN
    IF draft_id IS NULL THEN
        RAISE EXCEPTION 'draft_id is required' USING ERRCODE = 'invalid_parameter_value', COLUMN = 'draft_id';
    END IF;
    IF expected_version IS NULL THEN
        RAISE EXCEPTION 'expected_version is required: the version you reviewed'
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'expected_version';
    END IF;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'reason %: break glass says why', problem USING ERRCODE = 'invalid_parameter_value', COLUMN = 'reason';
    END IF;
    INSERT INTO walltrack.break_glass_grants (txid, config_table, config_id, actor, reason, db_user)
    VALUES (txid_current(), the_domain || '_config', draft_id, who, reason, session_user);
    PERFORM walltrack.activate_config(the_domain, draft_id, expected_version, who, 'BREAK GLASS: ' || reason);
    SELECT max(a.seq) INTO activation FROM walltrack.config_activations AS a
    WHERE a.config_table = the_domain || '_config' AND a.config_id = draft_id;
    EXECUTE format('SELECT version FROM %s WHERE id = $1', tbl) INTO live_version USING draft_id;
    PERFORM walltrack.record_change_event('break_glass', the_domain, draft_id,
        jsonb_build_object('domain', the_domain, 'id', draft_id, 'version', live_version,
                           'reviewed_version', expected_version, 'reason', reason, 'activation', activation), who);
    RETURN draft_id;
END;
$$;

-- ---------- schedules ----------

CREATE FUNCTION walltrack.schedule_activation(domain TEXT, draft_id UUID, expected_version INT, run_at TIMESTAMPTZ,
                                              actor TEXT, reason TEXT)
RETURNS UUID LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    the_domain TEXT := schedule_activation.domain;
    tbl REGCLASS := walltrack.config_table(the_domain);
    who TEXT := walltrack.change_actor(actor);
    problem TEXT := walltrack.change_text_problem(reason, 2000);
    row_status walltrack.config_status;
    current_version INT;
    new_id UUID;
BEGIN
    IF draft_id IS NULL THEN
        RAISE EXCEPTION 'draft_id is required' USING ERRCODE = 'invalid_parameter_value', COLUMN = 'draft_id';
    END IF;
    IF expected_version IS NULL THEN
        RAISE EXCEPTION 'expected_version is required: the version you reviewed'
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'expected_version';
    END IF;
    IF run_at IS NULL OR run_at <= statement_timestamp() - interval '1 second'
       OR run_at >= statement_timestamp() + interval '366 days' THEN
        RAISE EXCEPTION 'run_at must be in the future and within 366 days, not %', coalesce(run_at::text, 'null')
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'run_at';
    END IF;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'reason %', problem USING ERRCODE = 'invalid_parameter_value', COLUMN = 'reason';
    END IF;
    -- It runs later as the owner: only a database user that may activate now may schedule.
    PERFORM walltrack.require_activation_privilege(tbl, 'schedule its activation');
    row_status := walltrack.config_lock_row(tbl, draft_id);
    IF row_status <> 'draft' THEN
        RAISE EXCEPTION 'row % of % is %, only a draft can be scheduled', draft_id, tbl, row_status USING ERRCODE = 'WT001',
            HINT = 'Clone it into a draft, and schedule the draft.';
    END IF;
    EXECUTE format('SELECT version FROM %s WHERE id = $1', tbl) INTO current_version USING draft_id;
    IF current_version <> expected_version THEN
        RAISE EXCEPTION 'draft changed since you reviewed it (v% → v%); review again', expected_version, current_version
            USING ERRCODE = 'WT002', HINT = 'Show the draft again and schedule the version you see.';
    END IF;
    INSERT INTO walltrack.activation_schedules (domain, config_table, config_id, version, settings_hash, run_at,
                                                created_by, db_user, reason)
    VALUES (the_domain, the_domain || '_config', draft_id, current_version, walltrack.config_settings_hash(tbl, draft_id),
            run_at, who, session_user, reason)
    RETURNING id INTO new_id;
    PERFORM walltrack.record_change_event('schedule_created', the_domain, new_id,
        jsonb_build_object('domain', the_domain, 'schedule', new_id, 'id', draft_id, 'version', current_version,
                           'run_at', run_at, 'reason', reason), who);
    RETURN new_id;
END;
$$;

-- A pending schedule only.
CREATE FUNCTION walltrack.cancel_schedule(schedule_id UUID, actor TEXT, reason TEXT DEFAULT NULL)
RETURNS VOID LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    who TEXT := walltrack.change_actor(actor);
    this_row walltrack.activation_schedules;
    said TEXT;
BEGIN
    IF schedule_id IS NULL THEN
        RAISE EXCEPTION 'schedule_id is required' USING ERRCODE = 'invalid_parameter_value', COLUMN = 'schedule_id';
    END IF;
    IF char_length(reason) > 2000 THEN
        RAISE EXCEPTION 'reason must be at most 2000 characters' USING ERRCODE = 'invalid_parameter_value', COLUMN = 'reason';
    END IF;
    -- Checked before the row is locked: a role that may not cancel cannot hold the schedule up either.
    SELECT s.* INTO this_row FROM walltrack.activation_schedules AS s WHERE s.id = schedule_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no schedule %', schedule_id USING ERRCODE = 'WT003',
            HINT = 'List the schedules (walltrack-config schedule list) to find the id.';
    END IF;
    PERFORM walltrack.require_activation_privilege(walltrack.config_table(this_row.domain), 'cancel its schedules');
    SELECT s.* INTO this_row FROM walltrack.activation_schedules AS s WHERE s.id = schedule_id FOR UPDATE;
    IF this_row.status <> 'pending' THEN
        RAISE EXCEPTION 'schedule % is %, only a pending one can be cancelled', schedule_id, this_row.status
            USING ERRCODE = 'WT001', HINT = 'It ran or ended already: nothing to cancel.';
    END IF;
    said := 'cancelled by ' || who || coalesce(': ' || nullif(btrim(reason), ''), '');
    UPDATE walltrack.activation_schedules AS s
    SET status = 'cancelled', outcome = said, finished_at = clock_timestamp(), finished_by = who
    WHERE s.id = this_row.id;
    PERFORM walltrack.record_change_event('schedule_cancelled', this_row.domain, this_row.id,
        jsonb_build_object('domain', this_row.domain, 'schedule', this_row.id, 'id', this_row.config_id, 'version', this_row.version,
                           'run_at', this_row.run_at, 'outcome', said, 'reason', reason), who);
END;
$$;

-- Every due pending schedule, each claimed FOR UPDATE SKIP LOCKED (so once, whatever the number of runners),
-- each in a subtransaction: older than grace, missed; else activated (gated like any activation), or failed.
-- One no longer pending when its turn comes (an earlier one of this run activated its draft, which cancelled
-- it) is skipped. A transient error (a lock not available, a serialization failure, a deadlock, a cancel or
-- timeout) leaves it pending, to be run again by the next run while within the grace, and is returned with
-- status pending; a cancel or timeout also ends this run (what it did so far stays done).
CREATE FUNCTION walltrack.run_due_schedules(grace INTERVAL DEFAULT '5 minutes', runner TEXT DEFAULT NULL)
RETURNS TABLE (id UUID, domain TEXT, status TEXT, outcome TEXT)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    who TEXT := walltrack.change_actor(runner);
    due walltrack.activation_schedules;
    saved_actor TEXT;
    saved_reason TEXT;
    current_hash TEXT;
    activation BIGINT;
    status_now TEXT;
    result_status TEXT;
    result_outcome TEXT;
    stopping BOOLEAN := false;
BEGIN
    IF grace IS NULL OR grace < interval '0' THEN
        RAISE EXCEPTION 'grace must be an interval of 0 or more, not %', coalesce(grace::text, 'null')
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'grace';
    END IF;
    IF NOT EXISTS (SELECT FROM walltrack.activation_schedules AS s
                   WHERE s.status = 'pending' AND s.run_at <= clock_timestamp()) THEN
        RETURN;
    END IF;
    -- The writers' lock first, as every config write takes it before its rows (an edit then cancels a
    -- schedule of its draft): a runner holding a schedule never waits for it, so nobody deadlocks.
    PERFORM walltrack.lock_config_writes();
    FOR due IN
        SELECT s.* FROM walltrack.activation_schedules AS s
        WHERE s.status = 'pending' AND s.run_at <= clock_timestamp()
        ORDER BY s.run_at, s.id
        FOR UPDATE SKIP LOCKED
    LOOP
        -- As it is now, not as the loop's query saw it: this run may have cancelled it since.
        SELECT s.status INTO status_now FROM walltrack.activation_schedules AS s WHERE s.id = due.id;
        IF status_now IS DISTINCT FROM 'pending' THEN
            CONTINUE;
        END IF;
        IF due.run_at < clock_timestamp() - grace THEN
            result_status := 'missed';
            result_outcome := format('due at %s, more than %s before it could run; not activated', due.run_at, grace);
        ELSE
            saved_actor := coalesce(current_setting('walltrack.actor', true), '');
            saved_reason := coalesce(current_setting('walltrack.reason', true), '');
            BEGIN
                PERFORM set_config('walltrack.running_schedule', due.id::text, true);
                IF NOT has_table_privilege(due.db_user, walltrack.config_table(due.domain), 'UPDATE') THEN
                    RAISE EXCEPTION 'database user % may no longer activate %', due.db_user, due.config_table
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                current_hash := walltrack.config_settings_hash(walltrack.config_table(due.domain), due.config_id);
                IF current_hash IS NOT NULL AND current_hash <> due.settings_hash THEN
                    RAISE EXCEPTION 'the draft changed since it was scheduled' USING ERRCODE = 'WT002';
                END IF;
                PERFORM walltrack.activate_config(due.domain, due.config_id, due.version, due.created_by, due.reason);
                SELECT max(a.seq) INTO activation FROM walltrack.config_activations AS a
                WHERE a.config_table = due.config_table AND a.config_id = due.config_id;
                result_status := 'done';
                result_outcome := format('activated v%s (activation %s)', due.version, activation);
                PERFORM set_config('walltrack.running_schedule', '', true);
            EXCEPTION
                WHEN lock_not_available OR serialization_failure OR deadlock_detected OR query_canceled THEN
                    -- Transient: nothing of it happened (the subtransaction is undone); it stays pending.
                    result_status := 'pending';
                    result_outcome := left(format('left pending, to be run again (%s): %s', SQLSTATE, SQLERRM), 2000);
                    stopping := SQLSTATE = '57014';
                WHEN OTHERS THEN
                    result_status := 'failed';
                    result_outcome := left(SQLERRM, 2000);
            END;
            PERFORM set_config('walltrack.actor', saved_actor, true);
            PERFORM set_config('walltrack.reason', saved_reason, true);
        END IF;
        IF result_status = 'pending' THEN
            id := due.id;
            domain := due.domain;
            status := result_status;
            outcome := result_outcome;
            RETURN NEXT;
            IF stopping THEN
                RETURN;
            END IF;
            CONTINUE;
        END IF;
        UPDATE walltrack.activation_schedules AS s
        SET status = result_status, outcome = result_outcome, finished_at = clock_timestamp(), finished_by = who
        WHERE s.id = due.id;
        PERFORM walltrack.record_change_event(
            CASE result_status WHEN 'done' THEN 'schedule_executed' WHEN 'failed' THEN 'schedule_failed'
                               ELSE 'schedule_missed' END,
            due.domain, due.id,
            jsonb_build_object('domain', due.domain, 'schedule', due.id, 'id', due.config_id, 'version', due.version,
                               'run_at', due.run_at, 'outcome', result_outcome, 'reason', due.reason,
                               'scheduled_by', due.created_by), who);
        id := due.id;
        domain := due.domain;
        status := result_status;
        outcome := result_outcome;
        RETURN NEXT;
    END LOOP;
END;
$$;

-- ---------- the fleet ----------

-- Clients stale (not heard from for 3 heartbeats) and not noted so since they were last heard from: noted,
-- each with an event client_stale. Returns how many.
CREATE FUNCTION walltrack.fleet_note_stale() RETURNS INT
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    client RECORD;
    noted INT := 0;
BEGIN
    FOR client IN
        SELECT f.id, f.name, f.host, f.pid, f.domains, f.last_seen_at, f.heartbeat_s, f.reported_by
        FROM walltrack.fleet_clients AS f
        WHERE f.last_seen_at < statement_timestamp() - interval '1 second' * (f.heartbeat_s * 3)
          AND (f.stale_noted_at IS NULL OR f.stale_noted_at < f.last_seen_at)
        ORDER BY f.last_seen_at, f.id
        FOR UPDATE SKIP LOCKED
    LOOP
        UPDATE walltrack.fleet_clients AS f SET stale_noted_at = statement_timestamp() WHERE f.id = client.id;
        PERFORM walltrack.record_change_event('client_stale', NULL, client.id,
            jsonb_build_object('domain', NULL, 'client', client.id, 'name', client.name, 'host', client.host,
                               'pid', client.pid, 'domains', client.domains, 'last_seen_at', client.last_seen_at,
                               'heartbeat_s', client.heartbeat_s, 'reported_by', client.reported_by));
        noted := noted + 1;
    END LOOP;
    RETURN noted;
END;
$$;

-- ---------- webhooks ----------

-- Adding and removing one are events (webhook_added, webhook_removed) that say its name, the host of its URL,
-- its events and format: never its secret nor the rest of its URL (a path or query may hold a token). The one
-- added or removed gets no delivery of its own event.
CREATE FUNCTION walltrack.add_webhook(name TEXT, url TEXT, events TEXT[], secret TEXT, format TEXT, actor TEXT)
RETURNS UUID LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    kinds TEXT[] := ARRAY['policy_changed', 'request_created', 'request_approved', 'request_rejected', 'request_voided',
                          'request_applied', 'activated', 'rolled_back', 'break_glass', 'schedule_created',
                          'schedule_cancelled', 'schedule_executed', 'schedule_failed', 'schedule_missed', 'client_stale',
                          'webhook_added', 'webhook_removed'];
    the_name TEXT := add_webhook.name;
    the_url TEXT := add_webhook.url;
    the_events TEXT[] := add_webhook.events;
    the_secret TEXT := add_webhook.secret;
    the_format TEXT := add_webhook.format;
    who TEXT := walltrack.change_actor(actor);
    unknown TEXT;
    new_id UUID := gen_random_uuid();
    kept_events TEXT[];
BEGIN
    IF the_name IS NULL OR the_name !~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$' THEN
        RAISE EXCEPTION 'name must be 1-64 of A-Z a-z 0-9 . _ @ -, starting with a letter or digit'
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'name';
    END IF;
    IF the_url IS NULL OR char_length(the_url) > 2000 OR the_url !~* '^https?://[^[:space:]/?#]+([/?#][^[:space:]]*)?$' THEN
        RAISE EXCEPTION 'url must be an http or https URL of at most 2000 characters'
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'url';
    END IF;
    IF the_events IS NULL OR cardinality(the_events) = 0 OR array_ndims(the_events) <> 1 THEN
        RAISE EXCEPTION 'events must list event kinds, or ''*'' for all' USING ERRCODE = 'invalid_parameter_value', COLUMN = 'events';
    END IF;
    SELECT e INTO unknown FROM unnest(the_events) AS e WHERE e IS NULL OR NOT (e = '*' OR e = ANY (kinds)) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'unknown event kind %; kinds are %, or * for all', quote_nullable(left(unknown, 40)),
            array_to_string(kinds, ', ') USING ERRCODE = 'invalid_parameter_value', COLUMN = 'events';
    END IF;
    IF the_secret IS NULL OR char_length(the_secret) NOT BETWEEN 16 AND 200 THEN
        RAISE EXCEPTION 'secret must be 16 to 200 characters' USING ERRCODE = 'invalid_parameter_value', COLUMN = 'secret';
    END IF;
    IF the_format IS NULL OR the_format NOT IN ('json', 'slack', 'discord') THEN
        RAISE EXCEPTION 'format must be json, slack or discord, not %', quote_nullable(left(the_format, 40))
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'format';
    END IF;
    IF EXISTS (SELECT FROM walltrack_auth.webhooks AS w WHERE lower(w.name) = lower(the_name)) THEN
        RAISE EXCEPTION 'a webhook named % exists already', quote_literal(the_name)
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'uq_webhooks_name',
            HINT = 'Remove it first, or choose another name.';
    END IF;
    kept_events := ARRAY(SELECT u.e FROM unnest(the_events) WITH ORDINALITY AS u(e, n) GROUP BY u.e ORDER BY min(u.n));
    -- The event first, so its deliveries go to the webhooks there were already.
    PERFORM walltrack.record_change_event('webhook_added', NULL, new_id,
        jsonb_build_object('domain', NULL, 'webhook', new_id, 'name', the_name,
                           'host', walltrack.webhook_url_host(the_url), 'events', to_jsonb(kept_events),
                           'format', the_format), who);
    INSERT INTO walltrack_auth.webhooks (id, name, url, events, secret, format, created_by)
    VALUES (new_id, the_name, the_url, kept_events, the_secret, the_format, who);
    RETURN new_id;
END;
$$;

-- Its deliveries stay, for the record; those still pending fail.
CREATE FUNCTION walltrack.remove_webhook(name TEXT, actor TEXT)
RETURNS VOID LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    who TEXT := walltrack.change_actor(actor);
    gone walltrack_auth.webhooks;
BEGIN
    IF remove_webhook.name IS NULL THEN
        RAISE EXCEPTION 'name is required' USING ERRCODE = 'invalid_parameter_value', COLUMN = 'name';
    END IF;
    DELETE FROM walltrack_auth.webhooks AS w WHERE lower(w.name) = lower(remove_webhook.name) RETURNING w.* INTO gone;
    IF gone.id IS NULL THEN
        RAISE EXCEPTION 'no webhook named %', quote_literal(remove_webhook.name) USING ERRCODE = 'WT003',
            HINT = 'List the webhooks (walltrack-config webhook list) to find the name.';
    END IF;
    UPDATE walltrack.webhook_deliveries AS d
    SET status = 'failed', last_error = 'the webhook was removed by ' || who
    WHERE d.webhook_id = gone.id AND d.status = 'pending';
    -- After it is gone: its deliveries go to the webhooks that remain.
    PERFORM walltrack.record_change_event('webhook_removed', NULL, gone.id,
        jsonb_build_object('domain', NULL, 'webhook', gone.id, 'name', gone.name,
                           'host', walltrack.webhook_url_host(gone.url), 'events', to_jsonb(gone.events),
                           'format', gone.format), who);
END;
$$;

-- Due pending deliveries of enabled webhooks, leased for 60 s (another sender skips them meanwhile).
CREATE FUNCTION walltrack.claim_deliveries(max_count INT DEFAULT 20)
RETURNS TABLE (id BIGINT, webhook_id UUID, url TEXT, secret TEXT, format TEXT, kind TEXT, event_seq BIGINT,
               payload JSONB, at TIMESTAMPTZ, attempts INT)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    IF max_count IS NULL OR max_count NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'max_count must be 1 to 1000, not %', coalesce(max_count::text, 'null')
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'max_count';
    END IF;
    RETURN QUERY
    WITH due AS (
        SELECT d.id AS delivery FROM walltrack.webhook_deliveries AS d
        JOIN walltrack_auth.webhooks AS w ON w.id = d.webhook_id AND w.enabled
        WHERE d.status = 'pending' AND d.next_attempt_at <= clock_timestamp()
        ORDER BY d.next_attempt_at, d.id
        LIMIT max_count
        FOR UPDATE OF d SKIP LOCKED
    ), leased AS (
        UPDATE walltrack.webhook_deliveries AS d SET next_attempt_at = clock_timestamp() + interval '60 seconds'
        FROM due WHERE d.id = due.delivery
        RETURNING d.id AS delivery, d.webhook_id AS hook, d.kind AS event_kind, d.event_seq AS seq,
                  d.attempts AS tried
    )
    SELECT l.delivery, l.hook, w.url, w.secret, w.format, l.event_kind, l.seq, e.payload, e.at, l.tried
    FROM leased AS l
    JOIN walltrack_auth.webhooks AS w ON w.id = l.hook
    JOIN walltrack.change_events AS e ON e.seq = l.seq
    ORDER BY l.delivery;
END;
$$;

-- After a try: ok, succeeded; else one attempt more, and pending again after retry_after, or failed at 8.
-- A delivery already finished (its lease ran out and another sender finished it) stays as it is.
CREATE FUNCTION walltrack.finish_delivery(id BIGINT, ok BOOLEAN, status INT, error TEXT, retry_after INTERVAL)
RETURNS TEXT LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    delivery_id BIGINT := finish_delivery.id;
    http_status INT := finish_delivery.status;
    this_row walltrack.webhook_deliveries;
    new_status TEXT;
BEGIN
    IF delivery_id IS NULL THEN
        RAISE EXCEPTION 'id is required' USING ERRCODE = 'invalid_parameter_value', COLUMN = 'id';
    END IF;
    IF ok IS NULL THEN
        RAISE EXCEPTION 'ok is required' USING ERRCODE = 'invalid_parameter_value', COLUMN = 'ok';
    END IF;
    IF NOT ok AND (retry_after IS NULL OR retry_after < interval '0' OR retry_after > interval '1 day') THEN
        RAISE EXCEPTION 'retry_after must be from 0 to 1 day, not %', coalesce(retry_after::text, 'null')
            USING ERRCODE = 'invalid_parameter_value', COLUMN = 'retry_after';
    END IF;
    SELECT d.* INTO this_row FROM walltrack.webhook_deliveries AS d WHERE d.id = delivery_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no webhook delivery %', delivery_id USING ERRCODE = 'WT003';
    END IF;
    IF this_row.status <> 'pending' THEN
        RETURN this_row.status;
    END IF;
    new_status := CASE WHEN ok THEN 'succeeded' WHEN this_row.attempts + 1 >= 8 THEN 'failed' ELSE 'pending' END;
    UPDATE walltrack.webhook_deliveries AS d
    SET status = new_status,
        attempts = this_row.attempts + 1,
        last_status = http_status,
        last_error = CASE WHEN ok THEN NULL ELSE left(error, 2000) END,
        delivered_at = CASE WHEN ok THEN clock_timestamp() END,
        next_attempt_at = CASE WHEN new_status = 'pending' THEN clock_timestamp() + retry_after ELSE d.next_attempt_at END
    WHERE d.id = delivery_id;
    RETURN new_status;
END;
$$;

-- ---------- who may do what ----------

-- The writers belong to the tables' owner (the owner of the config logs, as in V11), whoever runs this file.
DO $$
DECLARE
    owner_name TEXT := (SELECT relowner::regrole::text FROM pg_class WHERE oid = 'walltrack.config_audit_log'::regclass);
    rel REGCLASS;
    fn REGPROCEDURE;
BEGIN
    FOREACH rel IN ARRAY ARRAY['walltrack.approval_policies', 'walltrack.change_requests', 'walltrack.change_approvals',
                               'walltrack.break_glass_grants', 'walltrack.activation_schedules', 'walltrack.change_events',
                               'walltrack_auth.webhooks', 'walltrack.webhook_deliveries']::regclass[] LOOP
        IF (SELECT relowner::regrole::text FROM pg_class WHERE oid = rel) <> owner_name THEN
            EXECUTE format('ALTER TABLE %s OWNER TO %s', rel, owner_name);
        END IF;
    END LOOP;
    FOR fn IN
        SELECT p.oid::regprocedure FROM pg_proc AS p
        WHERE p.pronamespace = 'walltrack'::regnamespace AND p.proowner::regrole::text <> owner_name
          AND p.proname IN ('config_settings_hash_of', 'config_settings_hash', 'change_text_problem', 'change_actor',
                            'require_activation_privilege', 'webhook_url_host', 'change_request_domain',
                            'record_change_event', 'refuse_direct_change_write', 'fan_out_change_event',
                            'gate_config_activation', 'record_config_live_event', 'void_changes_of_draft',
                            'set_approval_policy', 'request_activation', 'lock_pending_request', 'approve_request',
                            'reject_request', 'break_glass_activate', 'schedule_activation', 'cancel_schedule',
                            'run_due_schedules', 'fleet_note_stale', 'add_webhook', 'remove_webhook',
                            'claim_deliveries', 'finish_delivery')
    LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO %s', fn, owner_name);
    END LOOP;
END
$$;

-- Reading: anyone who may use schema walltrack (webhooks: nobody but the owner). Writing: nobody but the
-- owner, through the functions. Default privileges may have granted more: revoked.
DO $$
DECLARE
    granted RECORD;
BEGIN
    FOR granted IN
        SELECT DISTINCT CASE c.relkind WHEN 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END || c.oid::regclass::text AS object_name,
               acl.grantee
        FROM pg_class AS c, aclexplode(c.relacl) AS acl
        WHERE c.oid IN ('walltrack.approval_policies'::regclass, 'walltrack.change_requests'::regclass,
                        'walltrack.change_approvals'::regclass, 'walltrack.break_glass_grants'::regclass,
                        'walltrack.activation_schedules'::regclass, 'walltrack.change_events'::regclass,
                        'walltrack.change_events_seq_seq'::regclass, 'walltrack_auth.webhooks'::regclass,
                        'walltrack.webhook_deliveries'::regclass, 'walltrack.webhook_deliveries_id_seq'::regclass)
          AND acl.grantee <> c.relowner
    LOOP
        EXECUTE format('REVOKE ALL ON %s FROM %s', granted.object_name,
                       CASE WHEN granted.grantee = 0 THEN 'PUBLIC' ELSE granted.grantee::regrole::text END);
    END LOOP;
END
$$;
GRANT SELECT ON walltrack.approval_policies, walltrack.change_requests, walltrack.change_approvals,
    walltrack.break_glass_grants, walltrack.activation_schedules, walltrack.change_events,
    walltrack.webhook_deliveries TO PUBLIC;

-- Internals and trigger functions: nobody attaches the owner's writers to a table of their own, nor calls
-- the event writer (EXECUTE is checked when a trigger is created; the triggers keep firing for everyone).
REVOKE ALL ON FUNCTION walltrack.record_change_event(TEXT, TEXT, UUID, JSONB, TEXT),
    walltrack.require_activation_privilege(REGCLASS, TEXT), walltrack.webhook_url_host(TEXT),
    walltrack.change_request_domain(UUID),
    walltrack.lock_pending_request(UUID), walltrack.fan_out_change_event(), walltrack.gate_config_activation(),
    walltrack.record_config_live_event(), walltrack.void_changes_of_draft(), walltrack.refuse_direct_change_write()
    FROM PUBLIC;

-- Everyone, whatever their role (the front doors check who may): said here, not left to the default.
REVOKE ALL ON FUNCTION walltrack.config_settings_hash_of(JSONB), walltrack.config_settings_hash(REGCLASS, UUID),
    walltrack.change_text_problem(TEXT, INT), walltrack.change_actor(TEXT),
    walltrack.request_activation(TEXT, UUID, INT, TEXT, TEXT), walltrack.approve_request(UUID, TEXT, TEXT),
    walltrack.reject_request(UUID, TEXT, TEXT),
    walltrack.schedule_activation(TEXT, UUID, INT, TIMESTAMPTZ, TEXT, TEXT), walltrack.cancel_schedule(UUID, TEXT, TEXT),
    walltrack.run_due_schedules(INTERVAL, TEXT), walltrack.fleet_note_stale() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION walltrack.config_settings_hash_of(JSONB), walltrack.config_settings_hash(REGCLASS, UUID),
    walltrack.change_text_problem(TEXT, INT), walltrack.change_actor(TEXT),
    walltrack.request_activation(TEXT, UUID, INT, TEXT, TEXT), walltrack.approve_request(UUID, TEXT, TEXT),
    walltrack.reject_request(UUID, TEXT, TEXT),
    walltrack.schedule_activation(TEXT, UUID, INT, TIMESTAMPTZ, TEXT, TEXT), walltrack.cancel_schedule(UUID, TEXT, TEXT),
    walltrack.run_due_schedules(INTERVAL, TEXT), walltrack.fleet_note_stale() TO PUBLIC;

-- The owner's, and whom the owner grants them to (the server's role): going around the approvals, the
-- policies, and the webhooks (they hold secrets).
REVOKE ALL ON FUNCTION walltrack.break_glass_activate(TEXT, UUID, INT, TEXT, TEXT),
    walltrack.set_approval_policy(TEXT, INT, TEXT, TEXT),
    walltrack.add_webhook(TEXT, TEXT, TEXT[], TEXT, TEXT, TEXT), walltrack.remove_webhook(TEXT, TEXT),
    walltrack.claim_deliveries(INT), walltrack.finish_delivery(BIGINT, BOOLEAN, INT, TEXT, INTERVAL) FROM PUBLIC;
