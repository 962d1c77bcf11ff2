-- Drops login_throttle, the per-address login counter of the first
-- release (002_auth.sql). 003_auth_throttle.sql replaced it with
-- auth_throttle and kept it only while pods of that release could still
-- run; no code reads or writes it any more (glasgow gc no longer sweeps
-- it). IF EXISTS: a database whose operator already dropped it by hand
-- migrates too.
DROP TABLE IF EXISTS login_throttle;
