# shellcheck shell=bash
# Where a local dev server keeps its files; sourced by .ci/pg (and meant for
# every server `make run` starts, such as the object store).
#
# A server that refuses to run as root (PostgreSQL) runs as its own user
# when the caller is root, and that user must reach the directory given to
# it. A checkout in root's home (mode 700, as on most servers and
# containers) is out of its reach, and loosening the home's mode is not
# ours to do. So:
#
#   devdir_place USER DIR   prints the directory (absolute, existing) where
#                           a server running as USER keeps DIR's files:
#                           DIR itself when USER is the caller or can reach
#                           DIR's parent (DIR is then given to USER), else
#                           $GLASGOW_DEV_ROOT/HASH (default
#                           /var/lib/glasgow-dev), HASH of DIR's absolute
#                           path so that checkouts never share one, owned by
#                           USER, mode 700, with a file "origin" naming DIR.
#                           DIR must exist.
#
# The caller keeps its secrets in DIR either way, and links to the server's
# files from there so that people find them.

devdir_root() {
    printf '%s\n' "${GLASGOW_DEV_ROOT:-/var/lib/glasgow-dev}"
}

devdir_place() {
    local user=$1 dir=$2 root hash srv
    dir=$(cd "$dir" && pwd -P)
    if [ "$user" = "$(id -un)" ]; then
        printf '%s\n' "$dir"
        return
    fi
    if (cd / && runuser -u "$user" -- test -x "$(dirname "$dir")"); then
        chown "$user:" "$dir"
        chmod 755 "$dir"
        printf '%s\n' "$dir"
        return
    fi
    root=$(devdir_root)
    hash=$(printf '%s' "$dir" | sha256sum | cut -c1-16)
    srv=$root/$hash
    mkdir -p "$root"
    chmod 755 "$root"
    mkdir -p "$srv"
    chown "$user:" "$srv"
    chmod 700 "$srv"
    printf '%s\n' "$dir" >"$srv/origin"
    printf '%s\n' "$srv"
}
