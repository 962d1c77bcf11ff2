-- Password changes per user in a fixed window (GLASGOW_PASSWORD_CHANGES per
-- GLASGOW_PASSWORD_CHANGE_WINDOW_S), counted for the user whose password
-- changes, whoever asks, before the new password is hashed.
CREATE TABLE password_change_limit (
    user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    changes integer NOT NULL CHECK (changes >= 0),
    window_start timestamptz NOT NULL
);
