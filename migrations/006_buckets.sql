-- Buckets: named containers of files, owned by a user.
--
-- Names are unique across the whole service, as in S3: routes address a
-- bucket by name (/v1/buckets/:bucket), and an admin, who sees every
-- bucket, must be able to name any of them without ambiguity. The rules
-- are S3's (3-63 characters of lowercase letters, digits, '-' and '.',
-- starting and ending with a letter or digit, no "..", not an IPv4
-- address, none of S3's reserved prefixes and suffixes); the routes check
-- them first and say which rule failed, the CHECK keeps every writer
-- honest. COLLATE "C": names sort by bytes, the order keyset pages use.
--
-- Deleting a user deletes its buckets, but only empty ones: files refer
-- to their bucket with ON DELETE RESTRICT, so a user who still has files
-- cannot be deleted (409) and no row ever vanishes without its object
-- being deleted first.
CREATE TABLE buckets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text COLLATE "C" NOT NULL CHECK (
        length(name) BETWEEN 3 AND 63
        AND name ~ '^[a-z0-9][a-z0-9.-]*[a-z0-9]$'
        AND strpos(name, '..') = 0
        AND name !~ '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$'
        AND name !~ '^(xn--|sthree-|amzn-s3-demo-)'
        AND name !~ '(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$'),
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- NULL: the server's limit (GLASGOW_MAX_FILE_BYTES) alone applies
    max_file_bytes bigint CHECK (max_file_bytes IS NULL OR max_file_bytes >= 0),
    -- NULL: any type; else media types ("image/png") or ranges ("image/*")
    allowed_content_types text[] CHECK (
        allowed_content_types IS NULL
        OR (cardinality(allowed_content_types) <= 64
            AND array_position(allowed_content_types, NULL) IS NULL)),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT buckets_name_key UNIQUE (name)
);
CREATE INDEX buckets_owner_name_idx ON buckets (owner_id, name);
