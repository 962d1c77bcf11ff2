# Glasgow's container image (README, "Container image"). `make image` builds
# it with podman from a base made locally (.ci/image-base); any OCI builder
# with the real debian:bookworm-slim works the same.
#
# Build stage: Debian 12 with the -dev packages; LuaJIT and libmicrohttpd
# built from Debian source packages by the same scripts as .ci/deps (their
# source comes through apt's deb-src, with a private sources list that
# .ci/debsrc.sh writes, checked against Debian's archive keyring); then make.
FROM debian:bookworm-slim AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends \
        build-essential pkg-config dpkg-dev ca-certificates debian-archive-keyring \
        libpq-dev libcurl4-openssl-dev libssl-dev libgnutls28-dev >/dev/null \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
ENV GLASGOW_DEPS=/deps
# the libraries first, in their own layer: rebuilt only when their recipes change
COPY .ci/debsrc.sh .ci/build-luajit .ci/build-mhd .ci/
COPY .ci/patches/ .ci/patches/
RUN bash .ci/build-luajit && bash .ci/build-mhd
COPY Makefile ./
COPY tests/fuzz/fuzz.mk tests/fuzz/
COPY runtime/ runtime/
RUN make -j"$(nproc)" CI=true all \
    && install -D -s -m 0755 build/glasgow /out/usr/bin/glasgow

# Run stage: the runtime libraries only, tini as PID 1 (it forwards SIGTERM
# to glasgow and reaps), a fixed unprivileged user, no setuid or setgid
# program (su, mount, passwd: nothing to gain privileges with even where
# no_new_privs is not set), nothing writable: the
# image works with a read-only root filesystem and writes only to /tmp,
# which the runtime mounts (an emptyDir, a tmpfs).
FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends \
        libpq5 libcurl4 libssl3 libgnutls30 lua-cjson ca-certificates tini >/dev/null \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
    && groupadd --gid 10001 glasgow \
    && useradd --uid 10001 --gid 10001 --no-create-home --no-log-init \
        --home-dir /nonexistent --shell /usr/sbin/nologin glasgow \
    && find / -xdev -type f -perm /6000 -exec chmod ug-s {} +
COPY --from=build /out/usr/bin/glasgow /usr/bin/glasgow
# lua/ beside the binary's ../share/glasgow/lua, where glasgow looks for it
COPY lua/ /usr/share/glasgow/lua/
COPY migrations/ /usr/share/glasgow/migrations/
# GET /docs finds its files beside lua/ (GLASGOW_DOCS_DIR overrides). They
# are built before the image, by `make docs` (make image runs it): npm's
# registry is reached the way the host's npm is set up to reach it (proxy,
# CA), which a build stage would not know.
COPY build/docs/ /usr/share/glasgow/docs/
# the default routes; a Kubernetes ConfigMap mounted here replaces them
COPY routes/ /srv/glasgow/routes/
ENV GLASGOW_ROUTES_DIR=/srv/glasgow/routes \
    GLASGOW_MIGRATIONS_DIR=/usr/share/glasgow/migrations \
    GLASGOW_LISTEN=0.0.0.0:8080 \
    GLASGOW_ADMIN_LISTEN=0.0.0.0:9090 \
    TMPDIR=/tmp
WORKDIR /srv/glasgow
USER 10001:10001
# 8080: the API; 9090: the admin port (/livez, /readyz, /metrics), never routed
EXPOSE 8080 9090
STOPSIGNAL SIGTERM
# `glasgow serve` by default; another subcommand replaces CMD only:
# `podman run IMAGE migrate`, or `args: ["migrate"]` in Kubernetes.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/bin/glasgow"]
CMD ["serve"]

ARG VERSION=unknown
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=https://github.com/glasgow-api/glasgow
LABEL org.opencontainers.image.title="glasgow" \
      org.opencontainers.image.description="Glasgow API runtime: LuaJIT route scripts on libmicrohttpd and PostgreSQL" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION" \
      org.opencontainers.image.created="$CREATED" \
      org.opencontainers.image.source="$SOURCE" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
