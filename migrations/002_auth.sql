-- Bearer tokens: only the SHA-256 of a token is stored, so a database
-- leak does not leak usable tokens. Revocation is a timestamp.
CREATE TABLE auth_tokens (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX auth_tokens_user_idx ON auth_tokens (user_id);

-- Failed logins per client address in a sliding one-minute window, shared
-- by every worker and pod.
CREATE TABLE login_throttle (
    client text PRIMARY KEY,
    failures integer NOT NULL,
    window_start timestamptz NOT NULL
);
