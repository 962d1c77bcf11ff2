-- Invalidation of cached tokens (runtime/lua_authcache.c): every change
-- that can make a token stop authenticating, or change what it
-- authenticates as, sends a notification on the channel glasgow_auth, from
-- whichever writer made it (the API, psql, `glasgow gc`, another pod).
-- Each worker LISTENs and evicts what the payload names:
--   't:<hex of token_hash>'  one token
--   'u:<user id>'            every token of a user
--   '*'                      everything (TRUNCATE)
-- Notifications are sent when the writing transaction commits and dropped
-- if it rolls back; identical ones within a transaction are sent once.
-- Payloads stay short (under 70 bytes), far below the 8000-byte limit.

CREATE OR REPLACE FUNCTION auth_notify_token() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- deleting a token that is already unusable (what gc sweeps) tells no
    -- cache anything: none holds it
    IF TG_OP = 'DELETE' AND (OLD.revoked_at IS NOT NULL OR OLD.expires_at <= now()) THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('glasgow_auth', 't:' || encode(OLD.token_hash, 'hex'));
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION auth_notify_user() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('glasgow_auth', 'u:' || OLD.id::text);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION auth_notify_all() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('glasgow_auth', '*');
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS auth_tokens_notify_update ON auth_tokens;
CREATE TRIGGER auth_tokens_notify_update
    AFTER UPDATE ON auth_tokens FOR EACH ROW
    WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
          OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
          OR OLD.user_id IS DISTINCT FROM NEW.user_id
          OR OLD.token_hash IS DISTINCT FROM NEW.token_hash)
    EXECUTE FUNCTION auth_notify_token();

DROP TRIGGER IF EXISTS auth_tokens_notify_delete ON auth_tokens;
CREATE TRIGGER auth_tokens_notify_delete
    AFTER DELETE ON auth_tokens FOR EACH ROW
    EXECUTE FUNCTION auth_notify_token();

DROP TRIGGER IF EXISTS auth_tokens_notify_truncate ON auth_tokens;
CREATE TRIGGER auth_tokens_notify_truncate
    AFTER TRUNCATE ON auth_tokens FOR EACH STATEMENT
    EXECUTE FUNCTION auth_notify_all();

-- users.id never changes in practice; if it did, the old id's tokens go
-- (the cascade moves nothing: auth_tokens.user_id has no ON UPDATE)
DROP TRIGGER IF EXISTS users_notify_update ON users;
CREATE TRIGGER users_notify_update
    AFTER UPDATE ON users FOR EACH ROW
    WHEN (OLD.role IS DISTINCT FROM NEW.role
          OR OLD.password_hash IS DISTINCT FROM NEW.password_hash
          OR OLD.email IS DISTINCT FROM NEW.email
          OR OLD.name IS DISTINCT FROM NEW.name
          OR OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION auth_notify_user();

DROP TRIGGER IF EXISTS users_notify_delete ON users;
CREATE TRIGGER users_notify_delete
    AFTER DELETE ON users FOR EACH ROW
    EXECUTE FUNCTION auth_notify_user();

DROP TRIGGER IF EXISTS users_notify_truncate ON users;
CREATE TRIGGER users_notify_truncate
    AFTER TRUNCATE ON users FOR EACH STATEMENT
    EXECUTE FUNCTION auth_notify_all();
