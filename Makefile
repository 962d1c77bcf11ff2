# Glasgow: `make` builds build/glasgow; `make run` serves; `make test` runs every suite.
# Quiet by default; V=1 shows commands. SAN=1 builds with ASan+UBSan into build-san/.

V ?= 0
SAN ?= 0
Q := $(if $(filter 1,$(V)),,@)

CC ?= cc
PKGS := luajit libpq libcurl openssl gnutls
# libmicrohttpd 1.0.1 with our patches, static, from .ci/build-mhd (README.md)
MHD_PREFIX ?= $(or $(GLASGOW_DEPS),$(CURDIR)/.deps)/mhd
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
CFLAGS_ALL = $(CSTD) $(OPT) $(WARN) -MMD -MP -I$(MHD_PREFIX)/include $(PKG_CFLAGS) -Iruntime $(CFLAGS)
LDLIBS_ALL = $(MHD_LIB) $(PKG_LIBS) -lpthread -lm $(LDLIBS)

SRCS := $(wildcard runtime/*.c)
LIB_SRCS := $(filter-out runtime/main.c,$(SRCS))
OBJS := $(SRCS:runtime/%.c=$(BUILD)/obj/%.o)
LIB_OBJS := $(LIB_SRCS:runtime/%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps run stop-db test test-unit test-spec test-integration lint bench clean format
all: $(BUILD)/glasgow

deps:
	$(Q)bash .ci/deps

$(MHD_LIB): .ci/build-mhd $(wildcard .ci/patches/libmicrohttpd/*.patch)
	$(Q)bash .ci/build-mhd && touch $@

$(BUILD)/obj/%.o: runtime/%.c | $(MHD_LIB)
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

# Serves the API on the embedded defaults: a local PostgreSQL kept in .data/
# (git-ignored) on 127.0.0.1:$(DEV_PG_PORT), migrated, with a dev admin whose
# password is generated into .data/admin-password on the first run.
DEV_PG_PORT ?= 15432
DEV_ADMIN ?= admin@glasgow.local
run: deps $(BUILD)/glasgow
	$(Q)bash .ci/pg start .data/pg $(DEV_PG_PORT)
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
