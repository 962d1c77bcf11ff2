-- Failed logins per account and per client address, with a growing delay.
--
-- A row counts the failures of one key: 'account:<normalised email>' (for
-- any email asked for, known or not, so an unknown email is throttled
-- exactly like a known one) or 'address:<client address>'. A successful
-- login takes back only its own attempt: it never clears the failures that
-- others made, so an attacker who owns one account cannot reset the count
-- of the address they guess another account's password from.
--
-- login_throttle (per address only, cleared by any successful login) is no
-- longer used; it stays until no pod of the previous release runs, and a
-- later migration drops it.
CREATE TABLE auth_throttle (
    key text PRIMARY KEY,
    failures integer NOT NULL CHECK (failures >= 0),
    last_failure timestamptz NOT NULL,
    -- the last_failure before the latest attempt, put back when that
    -- attempt is taken back, so a success does not restart the delay
    prev_failure timestamptz
);
CREATE INDEX auth_throttle_last_failure_idx ON auth_throttle (last_failure);

-- Seconds a key must still wait before its next attempt: none while fewer
-- than free failures are remembered, else until last_failure plus
-- base_s * 2^(failures - free), at most max_s. Failures older than
-- window_s are forgotten. The policy's numbers are parameters (they come
-- from the environment); only its shape lives here.
CREATE FUNCTION auth_throttle_wait(failures integer, last_failure timestamptz, free integer,
                                   base_s double precision, max_s double precision,
                                   window_s double precision)
RETURNS double precision
LANGUAGE sql STABLE
AS $$
    SELECT CASE
        WHEN last_failure < now() - make_interval(secs => window_s) OR failures < free THEN 0
        ELSE greatest(0, extract(epoch FROM last_failure - now())
                         + least(max_s, base_s * power(2, least(failures - free, 40))))
    END
$$;
