-- Device cookies (OWASP's "device cookie" defence against lockout): a
-- successful login sets a random cookie, of which only the SHA-256 is kept
-- here with the account it logged into. A later login to that account that
-- presents it is throttled per device instead of per account, so guesses
-- from elsewhere cannot keep the owner out while they slow the guesser.
CREATE TABLE auth_devices (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_login timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX auth_devices_user_idx ON auth_devices (user_id);
CREATE INDEX auth_devices_last_login_idx ON auth_devices (last_login);
