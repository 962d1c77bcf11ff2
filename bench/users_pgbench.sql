-- bench/users.sh: pgbench read ceiling: the SELECT of workload 1 for a random seeded user. Seeded ids are 00000000-0000-4000-8000-<n, 12 digits>, so the uuid is built from n in the statement (pgbench has no string variables); the HTTP contenders send the uuid itself.
\set n random(1, 10000)
SELECT id, email, name, role, created_at, updated_at FROM users WHERE id = ('00000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid;
