# shellcheck shell=bash
# Sourced by the scripts that build a library from a Debian source package
# (.ci/build-luajit, .ci/build-mhd; README, "Built from source").
#
# debsrc_fetch SUITE PACKAGE VERSION WORK
#   Downloads and unpacks the source package PACKAGE=VERSION of SUITE into
#   WORK/src, through a private apt configuration (its own sources list with
#   one deb-src line, its own lists and cache under WORK): the system's apt
#   sources are never touched and no binary package of another suite can be
#   installed by it. apt checks the index signature against Debian's archive
#   keyring and the files' hashes; the .dsc's version is checked too.
#   GLASGOW_DEBIAN_MIRROR overrides the mirror (a snapshot.debian.org archive
#   once the pinned version has left the suite). Needs dpkg-dev.
debsrc_fetch() {
    local suite=$1 pkg=$2 version=$3 work=$4
    local mirror=${GLASGOW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
    mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" \
        >"$work/apt/sources.list"
    local apt_opts=(-q -o "Dir::Etc::SourceList=$work/apt/sources.list"
        -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$work/apt/lists"
        -o "Dir::Cache=$work/apt/cache")
    # as root, apt would hand the download to the _apt user, who cannot write here
    [ "$(id -u)" -ne 0 ] || apt_opts+=(-o APT::Sandbox::User=root)
    apt-get "${apt_opts[@]}" update >/dev/null
    if ! (cd "$work/src" && apt-get "${apt_opts[@]}" source "$pkg=$version" >/dev/null 2>&1); then
        echo "$pkg $version is not in $suite at $mirror;" \
            "set GLASGOW_DEBIAN_MIRROR to a snapshot.debian.org archive that has it" >&2
        return 1
    fi
    if ! grep -qx "Version: $version" "$work/src/${pkg}_$version.dsc"; then
        echo "$work/src/${pkg}_$version.dsc: not version $version" >&2
        return 1
    fi
}

# debsrc_need PACKAGE...: installs the build packages that are missing
# (with sudo when not root).
debsrc_need() {
    local p missing=() sudo=()
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
            missing+=("$p")
        fi
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    echo "installing: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}
