# Fuzzing, included from the Makefile.
#
# Every tests/fuzz/fuzz_<name>.c is a libFuzzer target, with seeds in
# tests/fuzz/corpus/<name>/ and an optional dictionary tests/fuzz/<name>.dict;
# adding a target is adding those files. `make fuzz` builds each target with
# clang under -fsanitize=fuzzer,address,undefined into build/fuzz/ and runs it
# for FUZZ_SECONDS, then prints one line per target; it fails if any target
# crashes, leaks, times out or runs out of memory. New inputs go to
# build/fuzz/corpus/<name>/ (kept between runs), crashes to
# build/fuzz/artifacts/<name>/. `make fuzz FUZZ_TARGETS=json` runs one.
#
# `make test` replays every corpus: $(BUILD)/tests/test_fuzz_<name> is the
# same target built with $(CC) and replay.c, a TAP test like the unit tests.

# Included before the Makefile's first rule: keep `all` the default goal.
fuzz_default_goal := $(.DEFAULT_GOAL)
FUZZ_ALL := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_SECONDS ?= 60
FUZZ_TIMEOUT ?= 10
FUZZ_RSS_MB ?= 1024
FUZZ_FLAGS ?=
FUZZ_CC ?= clang
FUZZ_DIR := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS = $(CSTD) -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN) -MMD -MP $(LUAJIT_CFLAGS) \
              -I$(MHD_PREFIX)/include $(PKG_CFLAGS) -Iruntime -Itests/fuzz -DFUZZ_SRC_DIR='"$(CURDIR)"'
FUZZ_LIB_OBJS := $(LIB_SRCS:runtime/%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_REPLAY_BINS := $(FUZZ_ALL:%=$(BUILD)/tests/test_fuzz_%)
UNIT_BINS += $(FUZZ_REPLAY_BINS)

.PHONY: fuzz fuzz-build
fuzz:
	$(Q)bash .ci/deps --fuzz
	$(Q)$(MAKE) --no-print-directory fuzz-build
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_TIMEOUT=$(FUZZ_TIMEOUT) FUZZ_RSS_MB=$(FUZZ_RSS_MB) \
	    FUZZ_FLAGS='$(FUZZ_FLAGS)' bash tests/fuzz/run $(FUZZ_TARGETS)

fuzz-build: $(FUZZ_BINS)
	@:

# Runtime objects carry coverage instrumentation but not libFuzzer's main;
# an archive lets each target link only the modules it uses. No -Werror
# for them: clang warns where gcc does not (on vsnprintf wrappers), and
# make lint covers the runtime.
$(FUZZ_DIR)/obj/%.o: runtime/%.c | $(DEPS)/luajit/.stamp $(MHD_LIB)
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(filter-out -Werror,$(WARN)) -Wno-format-nonliteral \
	    -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/libglasgow.a: $(FUZZ_LIB_OBJS)
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libglasgow.a
	@$(if $(filter 1,$(V)),,echo "  FUZZ    $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(WARN) -DFUZZ_LIBFUZZER -fsanitize=fuzzer -o $@ $< \
	    $(FUZZ_DIR)/libglasgow.a $(LDFLAGS) $(LDLIBS_ALL)

$(BUILD)/obj/fuzz_replay.o: tests/fuzz/replay.c tests/fuzz/fuzz.h | $(DEPS)/luajit/.stamp $(MHD_LIB)
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) -Itests/fuzz -DFUZZ_SRC_DIR='"$(CURDIR)"' -c -o $@ $<

$(BUILD)/tests/test_fuzz_%: tests/fuzz/fuzz_%.c $(BUILD)/obj/fuzz_replay.o $(LIB_OBJS) $(MHD_LIB)
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) -Itests/fuzz -DFUZZ_SRC_DIR='"$(CURDIR)"' -o $@ $< \
	    $(BUILD)/obj/fuzz_replay.o $(LIB_OBJS) $(LDFLAGS) $(LDLIBS_ALL)

-include $(FUZZ_LIB_OBJS:.o=.d) $(FUZZ_BINS:=.d) $(FUZZ_REPLAY_BINS:=.d) $(BUILD)/obj/fuzz_replay.d

.DEFAULT_GOAL := $(fuzz_default_goal)
