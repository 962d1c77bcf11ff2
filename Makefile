# Glasgow: `make` builds build/glasgow; `make run` serves; `make test` runs every suite.
# Quiet by default; V=1 shows commands. SAN=1 builds with ASan+UBSan into build-san/.

V ?= 0
SAN ?= 0
Q := $(if $(filter 1,$(V)),,@)

CC ?= cc
PKGS := libmicrohttpd libpq libcurl openssl gnutls
# LuaJIT is built from Debian's source with LUAJIT_ENABLE_CHECKHOOK by
# .ci/build-luajit and linked statically; the dynamic list exports its API to the C
# modules (lua-cjson) that scripts load, and nothing else.
DEPS ?= $(CURDIR)/.deps
LUAJIT_CFLAGS := -I$(DEPS)/luajit/include/luajit-2.1
LUAJIT_LIBS := $(DEPS)/luajit/lib/libluajit-5.1.a -ldl -Wl,--dynamic-list=runtime/lua.dynlist
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
CFLAGS_ALL = $(CSTD) $(OPT) $(WARN) -MMD -MP $(LUAJIT_CFLAGS) $(PKG_CFLAGS) -Iruntime $(CFLAGS)
LDLIBS_ALL = $(LUAJIT_LIBS) $(PKG_LIBS) -lpthread -lm $(LDLIBS)

SRCS := $(wildcard runtime/*.c)
LIB_SRCS := $(filter-out runtime/main.c,$(SRCS))
OBJS := $(SRCS:runtime/%.c=$(BUILD)/obj/%.o)
LIB_OBJS := $(LIB_SRCS:runtime/%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps run stop-db clean-db test test-unit test-spec test-integration lint bench clean format
all: $(BUILD)/glasgow

deps:
	$(Q)bash .ci/deps

$(DEPS)/luajit/.stamp: .ci/build-luajit
	$(Q)bash .ci/build-luajit

$(BUILD)/obj/%.o: runtime/%.c | $(DEPS)/luajit/.stamp
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/glasgow: $(OBJS)
	@$(if $(filter 1,$(V)),,echo "  LINK    $@")
	$(Q)$(CC) $(OPT) -o $@ $^ $(LDFLAGS) $(LDLIBS_ALL)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/tap.h $(LIB_OBJS)
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) -Itests/unit -o $@ $< $(LIB_OBJS) $(LDFLAGS) $(LDLIBS_ALL)

-include $(OBJS:.o=.d)

# Serves the API on the embedded defaults: a local PostgreSQL kept in .data/
# (git-ignored) on 127.0.0.1:$(DEV_PG_PORT), migrated, with a dev admin whose
# password is generated into .data/admin-password on the first run. The
# cluster is durable (fsync on). As root with a checkout the postgres user
# cannot reach, its files live in /var/lib/glasgow-dev/ instead (.ci/pg).
DEV_PG_PORT ?= 15432
DEV_ADMIN ?= admin@glasgow.local
run: deps $(BUILD)/glasgow
	$(Q)bash .ci/pg start .data/pg $(DEV_PG_PORT)
	@echo "PostgreSQL on 127.0.0.1:$(DEV_PG_PORT), files in $$(bash .ci/pg where .data/pg)"
	$(Q)umask 077; bash .ci/pg url .data/pg $(DEV_PG_PORT) > .data/database-url
	$(Q)[ -s .data/admin-password ] || (umask 077; head -c 12 /dev/urandom | base64 | tr '+/' '-_' > .data/admin-password)
	$(Q)DATABASE_URL_FILE=.data/database-url GLASGOW_BOOTSTRAP_ADMIN_EMAIL=$(DEV_ADMIN) \
	    GLASGOW_BOOTSTRAP_ADMIN_PASSWORD_FILE=.data/admin-password ./$(BUILD)/glasgow migrate
	@echo "dev admin: $(DEV_ADMIN), password in .data/admin-password"
	$(Q)DATABASE_URL_FILE=.data/database-url GLASGOW_ROUTES_DIR=$${GLASGOW_ROUTES_DIR:-routes} \
	    ./$(BUILD)/glasgow serve

# Stops the local PostgreSQL that `make run` started (its data stays).
stop-db:
	$(Q)bash .ci/pg stop .data/pg

# Stops it and deletes its data wherever it lives, and the dev secrets.
clean-db:
	$(Q)bash .ci/pg destroy .data/pg
	$(Q)rm -f .data/database-url .data/admin-password

# Every suite; ends with one "N passed, N failed" line.
test: deps
	$(Q)$(MAKE) --no-print-directory all $(UNIT_BINS)
	$(Q)BUILD=$(BUILD) bash tests/run-all

test-unit: $(UNIT_BINS)
	$(Q)BUILD=$(BUILD) SUITES=unit bash tests/run-all

test-spec:
	$(Q)BUILD=$(BUILD) SUITES=spec bash tests/run-all

test-integration: $(BUILD)/glasgow
	$(Q)BUILD=$(BUILD) SUITES=integration bash tests/run-all

lint:
	$(Q)bash .ci/lint

bench: $(BUILD)/glasgow
	$(Q)bash bench/hello.sh

format:
	$(Q)clang-format -i runtime/*.c runtime/*.h tests/unit/*.c tests/unit/*.h

clean:
	$(Q)rm -rf build build-san
