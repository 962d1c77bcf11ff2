# Glasgow: `make` builds build/glasgow; `make run` serves; `make test` runs every suite.
# Quiet by default; V=1 shows commands. SAN=1 builds with ASan+UBSan into build-san/.

V ?= 0
SAN ?= 0
Q := $(if $(filter 1,$(V)),,@)

CC ?= cc
PKGS := libpq libcurl openssl gnutls
# Built from Debian source packages into $(DEPS) (README, "Built from source"),
# linked statically: LuaJIT with LUAJIT_ENABLE_CHECKHOOK (.ci/build-luajit),
# whose API the dynamic list exports to the C modules scripts load
# (lua-cjson) and nothing else; libmicrohttpd 1.0.1 with our patches
# (.ci/build-mhd).
DEPS ?= $(or $(GLASGOW_DEPS),$(CURDIR)/.deps)
export GLASGOW_DEPS := $(DEPS)
LUAJIT_CFLAGS := -I$(DEPS)/luajit/include/luajit-2.1
LUAJIT_LIBS := $(DEPS)/luajit/lib/libluajit-5.1.a -ldl -Wl,--dynamic-list=runtime/lua.dynlist
MHD_PREFIX := $(DEPS)/mhd
MHD_LIB := $(MHD_PREFIX)/lib/libmicrohttpd.a
WARN := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wformat=2 -Wvla -Wwrite-strings
CSTD := -std=c11 -D_GNU_SOURCE
ifeq ($(SAN),1)
BUILD := build-san
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
else
BUILD := build
OPT := -O2 -g
endif
ifeq ($(CI),true)
WARN += -Werror
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS_ALL = $(CSTD) $(OPT) $(WARN) -MMD -MP $(LUAJIT_CFLAGS) -I$(MHD_PREFIX)/include $(PKG_CFLAGS) \
             -Iruntime $(CFLAGS)
LDLIBS_ALL = $(MHD_LIB) $(LUAJIT_LIBS) $(PKG_LIBS) -lpthread -lm $(LDLIBS)

SRCS := $(wildcard runtime/*.c)
LIB_SRCS := $(filter-out runtime/main.c,$(SRCS))
OBJS := $(SRCS:runtime/%.c=$(BUILD)/obj/%.o)
LIB_OBJS := $(LIB_SRCS:runtime/%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
include tests/fuzz/fuzz.mk

.PHONY: all deps run stop-db clean-db stop-s3 clean-s3 test test-unit test-spec test-integration test-deploy lint bench clean format \
        image e2e
all: $(BUILD)/glasgow

deps:
	$(Q)bash .ci/deps

$(DEPS)/luajit/.stamp: .ci/build-luajit
	$(Q)bash .ci/build-luajit

$(MHD_LIB): .ci/build-mhd $(wildcard .ci/patches/libmicrohttpd/*.patch)
	$(Q)bash .ci/build-mhd && touch $@

$(BUILD)/obj/%.o: runtime/%.c | $(DEPS)/luajit/.stamp $(MHD_LIB)
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/glasgow: $(OBJS) $(MHD_LIB)
	@$(if $(filter 1,$(V)),,echo "  LINK    $@")
	$(Q)$(CC) $(OPT) -o $@ $(OBJS) $(LDFLAGS) $(LDLIBS_ALL)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/tap.h $(LIB_OBJS) $(MHD_LIB)
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) -Itests/unit -o $@ $< $(LIB_OBJS) $(LDFLAGS) $(LDLIBS_ALL)

-include $(OBJS:.o=.d)

# glasgow.jsonc as a loadable Lua C module, so that the busted specs run on
# the runtime's own codec (runtime/lua_json.c) and not a stand-in. busted
# runs under Debian's luajit (.busted), which exports the Lua API: the
# module is built against that interpreter's headers and links nothing.
# Never sanitized (a shared object cannot bring ASan into luajit); the
# specs find it through package.cpath (spec/helper.lua, tests/run-all).
SPEC_JSONC := $(BUILD)/lua/glasgow/jsonc.so
SPEC_LUA_CFLAGS = $(or $(shell pkg-config --cflags luajit 2>/dev/null),-I/usr/include/luajit-2.1)
$(SPEC_JSONC): runtime/lua_json.c runtime/lua_json.h
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  CCMOD   $<")
	$(Q)$(CC) $(CSTD) -O2 -g $(WARN) -fPIC -shared -MMD -MP $(SPEC_LUA_CFLAGS) -Iruntime $(CFLAGS) \
	    -o $@ $< $(LDFLAGS)

-include $(SPEC_JSONC:.so=.d)

# Serves the API on the embedded defaults: a local PostgreSQL kept in .data/
# (git-ignored) on 127.0.0.1:$(DEV_PG_PORT), migrated, with a dev admin whose
# password is generated into .data/admin-password on the first run. The
# cluster is durable (fsync on). As root with a checkout the postgres user
# cannot reach, its files live in /var/lib/glasgow-dev/ instead (.ci/pg).
DEV_PG_PORT ?= 15432
# With it, the local S3 store: Ceph's RADOS Gateway on 127.0.0.1:$(DEV_S3_PORT)
# with its cluster (BlueStore on a file) and keys kept in .data/rgw (.ci/rgw);
# glasgow gets its S3_* settings from `.ci/rgw env`, keys by file.
DEV_S3_PORT ?= 17480
DEV_ADMIN ?= admin@glasgow.local
run: deps $(BUILD)/glasgow
	$(Q)bash .ci/pg start .data/pg $(DEV_PG_PORT)
	@echo "PostgreSQL on 127.0.0.1:$(DEV_PG_PORT), files in $$(bash .ci/pg where .data/pg)"
	$(Q)bash .ci/rgw start .data/rgw $(DEV_S3_PORT)
	@echo "S3 (Ceph RGW) on http://127.0.0.1:$(DEV_S3_PORT), bucket glasgow, files in $$(bash .ci/rgw where .data/rgw)"
	$(Q)umask 077; bash .ci/pg url .data/pg $(DEV_PG_PORT) > .data/database-url
	$(Q)[ -s .data/admin-password ] || (umask 077; head -c 12 /dev/urandom | base64 | tr '+/' '-_' > .data/admin-password)
	$(Q)[ -s .data/url-signing-key ] || (umask 077; head -c 32 /dev/urandom | base64 > .data/url-signing-key)
	$(Q)DATABASE_URL_FILE=.data/database-url GLASGOW_BOOTSTRAP_ADMIN_EMAIL=$(DEV_ADMIN) \
	    GLASGOW_BOOTSTRAP_ADMIN_PASSWORD_FILE=.data/admin-password ./$(BUILD)/glasgow migrate
	@echo "dev admin: $(DEV_ADMIN), password in .data/admin-password"
	$(Q)env $$(bash .ci/rgw env .data/rgw $(DEV_S3_PORT)) \
	    DATABASE_URL_FILE=.data/database-url GLASGOW_URL_SIGNING_KEY_FILE=.data/url-signing-key \
	    GLASGOW_ROUTES_DIR=$${GLASGOW_ROUTES_DIR:-routes} ./$(BUILD)/glasgow serve

# Stops the local PostgreSQL and S3 store that `make run` started (their data stays).
stop-db: stop-s3
	$(Q)bash .ci/pg stop .data/pg

# Stops them and deletes their data wherever it lives, and the dev secrets.
clean-db: clean-s3
	$(Q)bash .ci/pg destroy .data/pg
	$(Q)rm -f .data/database-url .data/admin-password .data/url-signing-key

# The S3 store alone: stop it (objects stay), or delete it with its keys.
stop-s3:
	$(Q)bash .ci/rgw stop .data/rgw

clean-s3:
	$(Q)bash .ci/rgw destroy .data/rgw

# Every suite; ends with one "N passed, N failed" line.
test: deps
	$(Q)$(MAKE) --no-print-directory all $(UNIT_BINS) $(SPEC_JSONC)
	$(Q)BUILD=$(BUILD) bash tests/run-all

test-unit: $(UNIT_BINS)
	$(Q)BUILD=$(BUILD) SUITES=unit bash tests/run-all

test-spec: $(SPEC_JSONC)
	$(Q)BUILD=$(BUILD) SUITES=spec bash tests/run-all

test-integration: $(BUILD)/glasgow
	$(Q)BUILD=$(BUILD) SUITES=integration bash tests/run-all

.PHONY: test-sops
test-sops:
	$(Q)SUITES=sops bash tests/run-all

# deploy/ and the CI workflow, offline (tests/deploy/run.mjs).
test-deploy:
	$(Q)BUILD=$(BUILD) SUITES=deploy bash tests/run-all

lint:
	$(Q)bash .ci/lint

bench: $(BUILD)/glasgow
	$(Q)bash bench/hello.sh

format:
	$(Q)clang-format -i runtime/*.c runtime/*.h tests/unit/*.c tests/unit/*.h tests/fuzz/*.c

clean:
	$(Q)rm -rf build build-san

# The container image (README, "Container image"): podman builds the
# Dockerfile from a debian:bookworm-slim made locally with mmdebstrap
# (.ci/image-base, cached in ~/.cache/glasgow/image/), as ghcr.io/glasgow-api/glasgow
# tagged with the version and :dev. `make e2e` runs that image against a
# real PostgreSQL (tests/e2e/).
export CONTAINERS_CONF ?= $(CURDIR)/.ci/containers.conf
image:
	$(Q)bash .ci/deps --image
	$(Q)$(MAKE) --no-print-directory docs
	$(Q)bash .ci/image

e2e: image
	$(Q)SUITES=e2e bash tests/run-all

# GET /docs (README, "API docs page"): Swagger UI from npm's swagger-ui-dist
# (web/package-lock.json; .ci/deps installs it) with the page and its
# initializer from web/docs/, copied into build/docs. Not committed; the
# runtime finds it beside lua/ (or GLASGOW_DOCS_DIR), the image in
# /usr/share/glasgow/docs.
DOCS_OUT := build/docs
DOCS_UI := web/node_modules/swagger-ui-dist
DOCS_FILES := $(addprefix $(DOCS_OUT)/,index.html init.js swagger-ui.css swagger-ui-bundle.js \
              swagger-ui-bundle.js.LICENSE.txt LICENSE NOTICE swagger-ui.css.gz \
              swagger-ui-bundle.js.gz)
.PHONY: docs test-docs
docs: $(DOCS_FILES)
# the servers these start need the page (after deps, which installs web/node_modules)
run test test-integration test-docs: docs

# /openapi.json under redocly lint and /docs in Chromium (tests/docs/)
test-docs: $(BUILD)/glasgow
	$(Q)BUILD=$(BUILD) SUITES=docs bash tests/run-all

$(DOCS_OUT)/%: web/docs/%
	$(Q)install -D -m 0644 $< $@

$(DOCS_OUT)/%: $(DOCS_UI)/% web/package-lock.json
	$(Q)install -D -m 0644 $< $@

# the large files also gzipped, for clients that accept it (-n: no name or
# time inside, so the bytes and their ETag depend on the content alone)
$(DOCS_OUT)/%.gz: $(DOCS_OUT)/%
	$(Q)gzip -9 -n -c $< > $@.tmp && mv $@.tmp $@
