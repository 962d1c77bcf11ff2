-- bench/users.sh: pgbench write ceiling: the INSERT of workload 2 (unique emails by client id and a random 50-bit number)
\set r random(1, 1000000000000000)
INSERT INTO users (email, name, password_hash) VALUES ('w-pgbench-' || :client_id || '-' || :r || '@bench.example', 'Bench writer', 'bench-dummy-hash') RETURNING id, email, name, role, created_at, updated_at;
