-- Files: the metadata of objects kept in the object store.
--
-- The object lives under storage_key, which the server makes
-- ('<bucket id>/<random uuid>') and never derives from the user's name:
-- the name is metadata only. A row goes through
--   pending   (inserted before the object is written; size and digest unknown)
--   committed (the object is complete and verified; what clients see)
--   deleting  (replaced or deleted; its object is being removed)
-- and no client ever sees a row that is not committed. At most one
-- committed row holds a name in a bucket (the partial unique index), so an
-- overwrite inserts a pending row beside the committed one that keeps
-- serving, and swaps them in one transaction. `glasgow gc` removes pending
-- rows older than its age and rows left in deleting, with their objects.
CREATE TABLE files (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    bucket_id uuid NOT NULL REFERENCES buckets (id) ON DELETE RESTRICT,
    -- 1..1024 bytes of UTF-8 (PostgreSQL refuses invalid UTF-8 and NUL),
    -- no control characters; the routes check the rest (segments)
    name text COLLATE "C" NOT NULL CHECK (
        octet_length(name) BETWEEN 1 AND 1024
        AND name !~ '[\x01-\x1f\x7f]'),
    storage_key text NOT NULL CHECK (
        storage_key ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
    size bigint CHECK (size IS NULL OR size >= 0),
    content_type text NOT NULL CHECK (length(content_type) BETWEEN 1 AND 255),
    sha256 bytea CHECK (sha256 IS NULL OR length(sha256) = 32),
    -- the ETag the object store gave the object (clients get one made
    -- from sha256)
    etag text CHECK (etag IS NULL OR length(etag) <= 200),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'committed', 'deleting')),
    -- who uploaded it; access follows the bucket's owner
    owner_id uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT files_storage_key_key UNIQUE (storage_key),
    CONSTRAINT files_committed_complete CHECK (
        status <> 'committed' OR (size IS NOT NULL AND sha256 IS NOT NULL))
);
-- one committed row per name; also the index listings page through
CREATE UNIQUE INDEX files_committed_name_key ON files (bucket_id, name) WHERE status = 'committed';
-- what gc looks for: rows that are not committed, by age
CREATE INDEX files_uncommitted_idx ON files (status, updated_at) WHERE status <> 'committed';
-- "is this bucket empty?" and gc's orphan check by key use the other indexes
CREATE INDEX files_bucket_idx ON files (bucket_id);
