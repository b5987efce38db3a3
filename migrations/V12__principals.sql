-- ============================================
-- V12: principals: users with argon2id password hashes, API tokens and sign-in sessions stored as hashes,
-- four roles, and an append-only audit log of every change to them
-- ============================================
-- Runs as-is: psql -v ON_ERROR_STOP=1 -1 -f V12__principals.sql
-- Run it as the owner of the walltrack tables (or a superuser), as V11: the audit log's writer is theirs.
-- What it adds, for every client:
--   * schema walltrack_auth, holding the three tables below and nothing else, with no privilege for anyone
--     but its owner: a broad grant on schema walltrack (GRANT SELECT ON ALL TABLES IN SCHEMA walltrack)
--     hands out no hash. Grant USAGE on it, and the privileges below, to the server's role only;
--   * walltrack_auth.users: names unique whatever their case, a role, an argon2id hash (never a password);
--   * walltrack_auth.api_tokens: API tokens (a role of their own) and sessions (the role of their user, read at
--     each check, so a role change or a disable acts at once); only a SHA-256 of the secret is kept, and a
--     token never changes but for its last use and its revocation;
--   * walltrack_auth.principal_audit_log: one row per change, without any hash, written by a trigger only;
--   * NOTIFY walltrack_principals on every change that could make a remembered credential wrong (an
--     update or a delete; never an insert: a new user, token or session changes nothing already known),
--     so servers drop it. The payload is JSON {"kind": K, "id": ID}: K 'user' with ID the user's id (a
--     role, password, name or disabled change: drop every session of that user), or K 'token' or
--     'session' with ID the walltrack_auth.api_tokens row's id (a revocation or a deletion).
-- Recording a last use or a last sign-in is neither audited nor announced: it happens on every request.
-- Nor is deleting a session that had already ended (revoked or expired): its whole life is in the log
-- already, and it grants nothing to anyone. Each sign-in deletes its user's sessions ended 30 days ago.
-- squawk-ignore-file prefer-robust-stmts, require-concurrent-index-creation
-- (why: the file runs in one transaction, where CONCURRENTLY cannot run and IF NOT EXISTS would only
--  hide a bad state; every table it indexes is created empty by the file itself.)

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- ---------- a schema for the hashes ----------

CREATE SCHEMA walltrack_auth;
COMMENT ON SCHEMA walltrack_auth IS 'Users, API tokens, sessions and their audit log (V12): for the owner and the server''s role only.';
-- A new schema grants nothing to PUBLIC; this says so, whatever the defaults. Grants that default
-- privileges may give to other roles are revoked once the tables exist (below).
REVOKE ALL ON SCHEMA walltrack_auth FROM PUBLIC;

-- ---------- users ----------

CREATE TABLE walltrack_auth.users (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_by TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by TEXT NOT NULL,
    last_login_at TIMESTAMPTZ,
    -- No ':' in a name: an API token acts as 'token:<name>', which no user name can then imitate.
    CONSTRAINT chk_users_name CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    CONSTRAINT chk_users_role CHECK (role IN ('reader', 'editor', 'operator', 'admin')),
    CONSTRAINT chk_users_password_hash CHECK (password_hash LIKE '$argon2id$%')
);
-- By lower(name): 'Alice' beside 'alice' would be two people the audit trail cannot tell apart.
CREATE UNIQUE INDEX uq_users_name ON walltrack_auth.users (lower(name));
COMMENT ON TABLE walltrack_auth.users IS 'People who sign in (walltrack-config user …); every change is in principal_audit_log.';
COMMENT ON COLUMN walltrack_auth.users.name IS 'Sign-in name: 1-64 of A-Z a-z 0-9 . _ @ -, starting with a letter or digit; unique whatever its case.';
COMMENT ON COLUMN walltrack_auth.users.role IS 'reader, editor, operator or admin; each may do what the ones before it may.';
COMMENT ON COLUMN walltrack_auth.users.password_hash IS 'argon2id hash (PHC string) of the password; the password itself is never stored.';
COMMENT ON COLUMN walltrack_auth.users.disabled IS 'A disabled user cannot sign in, and their sessions stop working at once.';
COMMENT ON COLUMN walltrack_auth.users.last_login_at IS 'Last successful sign-in (not audited).';

-- ---------- API tokens and sessions ----------

CREATE TABLE walltrack_auth.api_tokens (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    public_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT,
    role TEXT,
    user_id UUID REFERENCES walltrack_auth.users (id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_by TEXT NOT NULL,
    expires_at TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    revoked_by TEXT,
    CONSTRAINT uq_api_tokens_public_id UNIQUE (public_id),
    CONSTRAINT chk_api_tokens_public_id CHECK (public_id ~ '^[0-9a-f]{12}$'),
    CONSTRAINT chk_api_tokens_secret_hash CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
    CONSTRAINT chk_api_tokens_name CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    CONSTRAINT chk_api_tokens_role CHECK (role IN ('reader', 'editor', 'operator', 'admin')),
    -- A session carries no role and no name of its own: it is its user, whatever the user becomes; it
    -- always ends. An API token belongs to nobody, so that removing a person never breaks a deployment.
    CONSTRAINT chk_api_tokens_kind CHECK (
        (kind = 'api' AND name IS NOT NULL AND role IS NOT NULL AND user_id IS NULL)
        OR (kind = 'session' AND name IS NULL AND role IS NULL AND user_id IS NOT NULL AND expires_at IS NOT NULL)),
    CONSTRAINT chk_api_tokens_revoked CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);
-- Among live API tokens only: revoking 'deploy-bot' frees the name for its replacement.
CREATE UNIQUE INDEX uq_api_tokens_name ON walltrack_auth.api_tokens (lower(name)) WHERE kind = 'api' AND revoked_at IS NULL;
CREATE INDEX idx_api_tokens_user ON walltrack_auth.api_tokens (user_id);
COMMENT ON TABLE walltrack_auth.api_tokens IS 'API tokens (kind api) and sign-in sessions (kind session); only a hash of each secret is kept.';
COMMENT ON COLUMN walltrack_auth.api_tokens.public_id IS 'The lookup part of the token (wtc_<public_id>_<secret>); not a secret.';
COMMENT ON COLUMN walltrack_auth.api_tokens.kind IS 'api: a named token with its own role; session: what a user''s sign-in gets.';
COMMENT ON COLUMN walltrack_auth.api_tokens.role IS 'An API token''s role; NULL for a session, which has its user''s role.';
COMMENT ON COLUMN walltrack_auth.api_tokens.user_id IS 'A session''s user; NULL for an API token.';
COMMENT ON COLUMN walltrack_auth.api_tokens.secret_hash IS 'SHA-256 (hex) of the secret part; 256 random bits need no slow hash.';
COMMENT ON COLUMN walltrack_auth.api_tokens.expires_at IS 'When it stops working; NULL: an API token that never expires.';
COMMENT ON COLUMN walltrack_auth.api_tokens.last_used_at IS 'Last accepted use, recorded at most about once a minute (not audited).';
COMMENT ON COLUMN walltrack_auth.api_tokens.revoked_at IS 'When it was revoked; a revoked token never works again.';

-- ---------- who changed what, and when ----------

-- Whoever writes the tables, with psql too, the stamps say who and when, and what must never change does not.
CREATE FUNCTION walltrack.stamp_user() RETURNS TRIGGER
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.created_at := now();
        NEW.created_by := walltrack.config_actor();
    ELSIF NEW.id <> OLD.id OR NEW.created_at IS DISTINCT FROM OLD.created_at
          OR NEW.created_by IS DISTINCT FROM OLD.created_by THEN
        RAISE EXCEPTION 'the id and creation of user % never change', OLD.name USING ERRCODE = 'WT001',
            HINT = 'Create another user instead.';
    ELSIF to_jsonb(NEW) - 'last_login_at' - 'updated_at' - 'updated_by'
          = to_jsonb(OLD) - 'last_login_at' - 'updated_at' - 'updated_by' THEN
        -- A sign-in (or nothing at all): the user, as an administrator sees it, did not change.
        NEW.updated_at := OLD.updated_at;
        NEW.updated_by := OLD.updated_by;
        RETURN NEW;
    END IF;
    NEW.updated_at := now();
    NEW.updated_by := walltrack.config_actor();
    RETURN NEW;
END;
$$;

-- A token is what it was made with: raising the role of one already handed out would hand out more than
-- was reviewed. Only its last use and its (one-way) revocation change.
CREATE FUNCTION walltrack.guard_api_token() RETURNS TRIGGER
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.created_at := now();
        NEW.created_by := walltrack.config_actor();
        NEW.last_used_at := NULL;
        NEW.revoked_by := CASE WHEN NEW.revoked_at IS NOT NULL THEN walltrack.config_actor() END;
        RETURN NEW;
    END IF;
    IF to_jsonb(NEW) - 'last_used_at' - 'revoked_at' - 'revoked_by'
       <> to_jsonb(OLD) - 'last_used_at' - 'revoked_at' - 'revoked_by' THEN
        RAISE EXCEPTION 'a token never changes but for its last use and its revocation' USING ERRCODE = 'WT001',
            HINT = 'Revoke it and create another.';
    END IF;
    IF OLD.revoked_at IS NOT NULL THEN
        IF NEW.revoked_at IS DISTINCT FROM OLD.revoked_at OR NEW.revoked_by IS DISTINCT FROM OLD.revoked_by THEN
            RAISE EXCEPTION 'a revoked token stays revoked' USING ERRCODE = 'WT001',
                HINT = 'Create another token.';
        END IF;
    ELSIF NEW.revoked_at IS NOT NULL THEN
        NEW.revoked_by := walltrack.config_actor();
    ELSE
        NEW.revoked_by := NULL;
    END IF;
    RETURN NEW;
END;
$$;

-- A TRUNCATE fires no row trigger: principals would vanish from the audit trail.
CREATE FUNCTION walltrack.refuse_principal_truncate() RETURNS TRIGGER
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'TRUNCATE on %.% is refused: it would bypass the principal audit log', TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'WT001', HINT = 'Disable users and revoke tokens instead.';
END;
$$;

-- ---------- the principal audit log ----------

CREATE TABLE walltrack_auth.principal_audit_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    principal_kind TEXT NOT NULL,
    principal_id UUID NOT NULL,
    principal_name TEXT,
    action TEXT NOT NULL,
    old_values JSONB,
    new_values JSONB,
    changed_fields TEXT[],
    performed_by TEXT NOT NULL,
    source_ip TEXT,
    user_agent TEXT,
    db_user TEXT NOT NULL,
    db_client_addr INET,
    performed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT chk_principal_audit_log_kind CHECK (principal_kind IN ('user', 'token', 'session')),
    CONSTRAINT chk_principal_audit_log_action CHECK (
        action IN ('create', 'update', 'set-role', 'set-password', 'disable', 'enable', 'revoke', 'delete'))
);
CREATE INDEX idx_principal_audit_log_principal ON walltrack_auth.principal_audit_log (principal_id, id);
COMMENT ON TABLE walltrack_auth.principal_audit_log IS 'Every change to users, API tokens and sessions; append-only, written by their trigger only, never holding a hash.';
COMMENT ON COLUMN walltrack_auth.principal_audit_log.principal_kind IS 'user, token (an API token) or session (a user''s sign-in).';
COMMENT ON COLUMN walltrack_auth.principal_audit_log.principal_name IS 'The user''s or token''s name (a session: its user''s), as it was then.';
COMMENT ON COLUMN walltrack_auth.principal_audit_log.action IS 'create, update, set-role, set-password, disable, enable, revoke or delete.';
COMMENT ON COLUMN walltrack_auth.principal_audit_log.old_values IS 'The row before, without password_hash or secret_hash.';
COMMENT ON COLUMN walltrack_auth.principal_audit_log.new_values IS 'The row after, without password_hash or secret_hash.';
COMMENT ON COLUMN walltrack_auth.principal_audit_log.changed_fields IS 'The columns an update changed (password_hash named, never shown).';
COMMENT ON COLUMN walltrack_auth.principal_audit_log.performed_by IS 'Who, as declared (walltrack.actor: a user name, or token:<name>), else the database user.';
COMMENT ON COLUMN walltrack_auth.principal_audit_log.source_ip IS 'The client address, as declared (walltrack.source_ip), else the session''s.';
COMMENT ON COLUMN walltrack_auth.principal_audit_log.user_agent IS 'The client, as declared (walltrack.user_agent), else application_name.';
COMMENT ON COLUMN walltrack_auth.principal_audit_log.db_user IS 'The database user of the session that made the change.';
COMMENT ON COLUMN walltrack_auth.principal_audit_log.db_client_addr IS 'The address the database saw the session come from; NULL over a Unix socket.';

CREATE TRIGGER trg_principal_audit_log_origin
    BEFORE INSERT ON walltrack_auth.principal_audit_log
    FOR EACH ROW EXECUTE FUNCTION walltrack.refuse_direct_log_write();

CREATE TRIGGER trg_principal_audit_log_append_only
    BEFORE UPDATE OR DELETE ON walltrack_auth.principal_audit_log
    FOR EACH ROW EXECUTE FUNCTION walltrack.refuse_log_change();

CREATE TRIGGER trg_principal_audit_log_no_truncate
    BEFORE TRUNCATE ON walltrack_auth.principal_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION walltrack.refuse_log_change();

-- SECURITY DEFINER: the log is written as its owner, whoever changes a principal; nobody else may write it.
CREATE FUNCTION walltrack.record_principal_change() RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old_full JSONB := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
    new_full JSONB := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
    subject JSONB := coalesce(new_full, old_full);
    changed TEXT[];
    kind TEXT;
    act TEXT;
BEGIN
    -- It runs as the log's owner: never for a table (or view) that some role attached it to itself.
    IF TG_TABLE_SCHEMA <> 'walltrack_auth' OR TG_TABLE_NAME NOT IN ('users', 'api_tokens') THEN
        RAISE EXCEPTION '% records walltrack_auth.users and walltrack_auth.api_tokens only, not %.%', TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'WT001', HINT = 'Change a user or a token; their trigger records the change.';
    END IF;
    IF TG_OP = 'UPDATE' THEN
        SELECT array_agg(n.key ORDER BY n.key) INTO changed
        FROM jsonb_each(new_full) AS n
        WHERE n.value IS DISTINCT FROM old_full -> n.key AND n.key NOT IN ('updated_at', 'updated_by');
        -- Bookkeeping of every request: neither a change to review nor a reason to drop a remembered token.
        IF changed IS NULL OR changed <@ ARRAY['last_used_at', 'last_login_at'] THEN
            RETURN NULL;
        END IF;
    ELSIF TG_OP = 'DELETE' AND old_full ->> 'kind' = 'session'
          AND (old_full ->> 'revoked_at' IS NOT NULL OR (old_full ->> 'expires_at')::timestamptz <= now()) THEN
        -- Housekeeping: a session that had ended, whose creation (with its expiry) and revocation are in
        -- the log already. It granted nothing any more, so no server remembers it either.
        RETURN NULL;
    END IF;
    kind := CASE WHEN TG_TABLE_NAME = 'users' THEN 'user'
                 WHEN subject ->> 'kind' = 'session' THEN 'session' ELSE 'token' END;
    act := CASE TG_OP
        WHEN 'INSERT' THEN 'create'
        WHEN 'DELETE' THEN 'delete'
        ELSE CASE WHEN 'disabled' = ANY (changed) THEN
                      CASE WHEN (new_full ->> 'disabled')::boolean THEN 'disable' ELSE 'enable' END
                  WHEN 'role' = ANY (changed) THEN 'set-role'
                  WHEN 'password_hash' = ANY (changed) THEN 'set-password'
                  WHEN 'revoked_at' = ANY (changed) THEN 'revoke'
                  ELSE 'update' END
    END;
    INSERT INTO walltrack_auth.principal_audit_log
        (principal_kind, principal_id, principal_name, action, old_values, new_values, changed_fields,
         performed_by, source_ip, user_agent, db_user, db_client_addr)
    VALUES (
        kind,
        (subject ->> 'id')::uuid,
        CASE WHEN kind = 'session'
             THEN (SELECT u.name FROM walltrack_auth.users AS u WHERE u.id = (subject ->> 'user_id')::uuid)
             ELSE subject ->> 'name' END,
        act,
        old_full - 'password_hash' - 'secret_hash',
        new_full - 'password_hash' - 'secret_hash',
        changed,
        walltrack.config_actor(),
        left(coalesce(nullif(current_setting('walltrack.source_ip', true), ''), host(inet_client_addr())), 45),
        coalesce(nullif(current_setting('walltrack.user_agent', true), ''), nullif(current_setting('application_name'), '')),
        session_user,
        inet_client_addr()
    );
    -- A new principal makes nothing that a server remembers wrong; a change or a removal may.
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('walltrack_principals', json_build_object('kind', kind, 'id', subject ->> 'id')::text);
    END IF;
    RETURN NULL;
END;
$$;

-- Nobody attaches the owner's log writer to a table of their own (EXECUTE is checked when a trigger is
-- created, so the principal tables' triggers keep firing for everyone).
REVOKE EXECUTE ON FUNCTION walltrack.record_principal_change() FROM PUBLIC;

-- ---------- the triggers ----------

CREATE TRIGGER trg_users_stamp
    BEFORE INSERT OR UPDATE ON walltrack_auth.users
    FOR EACH ROW EXECUTE FUNCTION walltrack.stamp_user();

CREATE TRIGGER trg_users_audit
    AFTER INSERT OR UPDATE OR DELETE ON walltrack_auth.users
    FOR EACH ROW EXECUTE FUNCTION walltrack.record_principal_change();

CREATE TRIGGER trg_users_no_truncate
    BEFORE TRUNCATE ON walltrack_auth.users
    FOR EACH STATEMENT EXECUTE FUNCTION walltrack.refuse_principal_truncate();

CREATE TRIGGER trg_api_tokens_guard
    BEFORE INSERT OR UPDATE ON walltrack_auth.api_tokens
    FOR EACH ROW EXECUTE FUNCTION walltrack.guard_api_token();

CREATE TRIGGER trg_api_tokens_audit
    AFTER INSERT OR UPDATE OR DELETE ON walltrack_auth.api_tokens
    FOR EACH ROW EXECUTE FUNCTION walltrack.record_principal_change();

CREATE TRIGGER trg_api_tokens_no_truncate
    BEFORE TRUNCATE ON walltrack_auth.api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION walltrack.refuse_principal_truncate();

-- ---------- nothing for anyone else ----------

-- The hashes are as good as a password to whoever may try them offline, and the log is the owner's. A
-- role's default privileges (ALTER DEFAULT PRIVILEGES … GRANT SELECT ON TABLES) may have granted something
-- on the new tables, their id sequence or the schema: every privilege of anyone but the owner is revoked.
DO $$
DECLARE
    granted RECORD;
BEGIN
    FOR granted IN
        SELECT DISTINCT CASE c.relkind WHEN 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END || c.oid::regclass::text AS object_name,
               acl.grantee
        FROM pg_class AS c, aclexplode(c.relacl) AS acl
        WHERE c.relnamespace = 'walltrack_auth'::regnamespace AND acl.grantee <> c.relowner
        UNION
        SELECT DISTINCT 'SCHEMA walltrack_auth', acl.grantee
        FROM pg_namespace AS n, aclexplode(n.nspacl) AS acl
        WHERE n.oid = 'walltrack_auth'::regnamespace AND acl.grantee <> n.nspowner
    LOOP
        EXECUTE format('REVOKE ALL ON %s FROM %s', granted.object_name,
                       CASE WHEN granted.grantee = 0 THEN 'PUBLIC' ELSE granted.grantee::regrole::text END);
    END LOOP;
END
$$;
