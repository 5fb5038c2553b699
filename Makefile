# SecureStreams build. `make` builds bin/sstream and bin/sstream-enclave
# (the sandbox enclave program, linked statically: nothing is loaded into
# it that its measurement does not cover); `make test` runs every test;
# `make demo` runs DelayedFlights; `make bench` runs the benchmarks;
# `make image` builds the container image securestreams:<version>.
# Build types: `make SAN=1` (ASan+UBSan, into build-san/), `make valgrind`.
# `make format` (clang-format on changed files), `make check` (cppcheck).
# Test builds: bin/sstream-test and bin/sstream-enclave-test have the test
# hooks (SS_TEST_HOOKS: SS_ENCLAVE_TEST_*, SS_RUN_TEST_*) compiled in;
# bin/sstream and bin/sstream-enclave have none (`make unit-bins` builds
# the test builds; the unit tests link the hook objects).
# Lua engine: `make LUA=luajit` builds with LuaJIT 2.1 into build-luajit/:
# bin/sstream-luajit, bin/sstream-enclave-luajit (and -test-luajit); the
# two engines cannot share one binary (docs/LUA.md "Engines").

CC      ?= cc
LUA     ?= 5.4
SAN     ?= 0
OPT     ?= -O2
ifeq ($(LUA),luajit)
LUAPKG  := luajit
LUADEF  := -DSS_LUAJIT=1
LUASFX  := -luajit
LUALIB  := -lluajit-5.1 -ldl
else ifeq ($(LUA),5.4)
LUAPKG  := lua5.4
LUADEF  :=
LUASFX  :=
LUALIB  := -llua5.4
else
$(error LUA must be 5.4 or luajit, not '$(LUA)')
endif
# (deploy/docker/Dockerfile installs their Debian packages: keep both in step)
PKGS    := $(LUAPKG) libzmq libsodium libseccomp yaml-0.1 msgpack libmicrohttpd

ifeq ($(SAN),1)
BUILD   := build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
OPT     := -O1 -g
else
BUILD   := build
SANFLAGS :=
endif
BUILD   := $(BUILD)$(LUASFX)
# `make fuzz`: the libFuzzer targets of tests/fuzz, built with clang into
# build-fuzz/ (the library instrumented, ASan+UBSan); tests/fuzz/run.sh
# runs each for a few seconds (tests/run-all.sh does).
FUZZ    ?= 0
ifeq ($(FUZZ),1)
CC      := clang
BUILD   := build-fuzz
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined \
            -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT     := -O1 -g
WARN_EXTRA := -Wno-missing-field-initializers # libseccomp's macros
endif

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter -Werror $(WARN_EXTRA)
# (function sections: the static enclave program keeps only what it
# calls: --gc-sections drops e.g. the CURVE key code and its zmq calls)
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) -g $(WARN) $(SANFLAGS) $(LUADEF) \
           -ffunction-sections -fdata-sections \
           -Iinclude -Isrc -I$(BUILD)/gen $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lpthread -lm -lrt
LDFLAGS += $(SANFLAGS)

LIB_SRC  := $(sort $(wildcard src/core/*.c src/wire/*.c src/net/*.c \
            src/lua/*.c src/crypto/*.c src/enclave/*.c src/gen/*.c src/node/*.c \
            src/run/*.c))
ENC_MAIN := src/cli/sstream_enclave.c
CLI_SRC  := $(filter-out $(ENC_MAIN),$(sort $(wildcard src/cli/*.c)))
LUA_MODS := $(sort $(wildcard src/lua/lua/*.lua))
GEN_C    := $(BUILD)/gen/ss_lua_embed.c
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/ss_lua_embed.o
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/libsstream.a
BIN      := bin/sstream$(if $(filter 1,$(SAN)),-san,)$(LUASFX)
# the enclave program is static, which the sanitizers do not support: the
# SAN build's tests use bin/sstream-enclave from the normal build
ENC_BIN  := $(if $(filter 1,$(SAN)),,bin/sstream-enclave$(LUASFX))
ENC_LIBS := $(LUALIB) -lsodium -lseccomp -lmsgpackc -lm -lpthread
# test builds: these files have test hooks under SS_TEST_HOOKS
HOOK_SRC := src/enclave/ss_enclave.c src/enclave/ss_enclave_child.c \
            src/enclave/ss_enclave_core.c src/enclave/ss_enclave_sandbox.c \
            src/cli/cmd_run.c
HOOK_OBJ := $(HOOK_SRC:%.c=$(BUILD)/hooks/%.o)
HOOK_LIB := $(filter $(BUILD)/hooks/src/enclave/%,$(HOOK_OBJ))
TEST_BIN := $(if $(filter 1,$(SAN)),,bin/sstream-test$(LUASFX) \
                                     bin/sstream-enclave-test$(LUASFX))
TEST_CLI_OBJ := $(filter-out $(BUILD)/src/cli/cmd_run.o,$(CLI_OBJ)) \
                $(BUILD)/hooks/src/cli/cmd_run.o

UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: FORCE all deps image test test-unit test-lua test-integration \
        test-san valgrind demo bench clean format check fuzz fuzz-bins

all: $(BIN) $(ENC_BIN)

deps:
	@scripts/deps.sh
	@scripts/deploy-deps.sh

# The container image securestreams:<version> (deploy/docker/Dockerfile;
# needs a running Docker engine; docs/DEPLOY.md).
image:
	@scripts/deploy-deps.sh
	@scripts/build-image.sh

# objects are rebuilt when the compiler flags change (a stamp file)
CFLAGS_STAMP := $(BUILD)/cflags.stamp
$(CFLAGS_STAMP): FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(CFLAGS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS)' > $@
FORCE:

$(BUILD)/%.o: %.c $(CFLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(GEN_C): $(LUA_MODS) scripts/embed-lua.sh
	@mkdir -p $(dir $@)
	scripts/embed-lua.sh $@ $(LUA_MODS)

$(BUILD)/gen/ss_lua_embed.o: $(GEN_C) $(CFLAGS_STAMP)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	@mkdir -p bin
	$(CC) $(LDFLAGS) $(CLI_OBJ) $(LIB) $(LDLIBS) -o $@

# (glibc warns at link time that lua's loadlib uses dlopen: the enclave
# never loads code, package.loadlib is removed and seccomp forbids open)
bin/sstream-enclave$(LUASFX): $(BUILD)/$(ENC_MAIN:.c=.o) $(LIB)
	@mkdir -p bin
	@rm -f $@
	$(CC) -static -Wl,--gc-sections $^ $(ENC_LIBS) -o $@ 2>&1 | \
	    { grep -v "dlopen' in statically linked\|in function .lookforfunc" || true; }
	@test -x $@

$(BUILD)/hooks/%.o: %.c $(CFLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DSS_TEST_HOOKS -MMD -MP -c $< -o $@

bin/sstream-test$(LUASFX): $(TEST_CLI_OBJ) $(HOOK_LIB) $(LIB)
	@mkdir -p bin
	$(CC) $(LDFLAGS) $(TEST_CLI_OBJ) $(HOOK_LIB) $(LIB) $(LDLIBS) -o $@

bin/sstream-enclave-test$(LUASFX): $(BUILD)/$(ENC_MAIN:.c=.o) $(HOOK_LIB) $(LIB)
	@mkdir -p bin
	@rm -f $@
	$(CC) -static -Wl,--gc-sections $^ $(ENC_LIBS) -o $@ 2>&1 | \
	    { grep -v "dlopen' in statically linked\|in function .lookforfunc" || true; }
	@test -x $@

# the attacker's tools (a malicious host): see tests/attack/
$(BUILD)/tests/attack/%.so: tests/attack/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -shared $< -o $@ -ldl

ATTACK_SO := $(if $(filter 1,$(SAN)),,$(patsubst tests/attack/%.c,$(BUILD)/tests/attack/%.so,$(wildcard tests/attack/*.c)))

$(BUILD)/tests/%: tests/unit/%.c $(HOOK_LIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DSS_TEST_HOOKS $< $(HOOK_LIB) $(LIB) $(LDLIBS) -lcmocka $(LDFLAGS) -o $@

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB)
	$(CC) $(CFLAGS) -fsanitize=fuzzer $< $(LIB) $(LDLIBS) $(LDFLAGS) -o $@

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(LIB) $(LDLIBS) $(LDFLAGS) -o $@

# the soak's charts use the SVG plotter of `sstream bench`
$(BUILD)/bench/soak_plot: bench/soak_plot.c $(BUILD)/src/cli/bench_svg.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(BUILD)/src/cli/bench_svg.o -lm $(LDFLAGS) -o $@

# Every test. This is the command the README gives and .ci/run calls.
# Its builds (here, and the fuzz and sanitizer builds of run-all.sh) use
# every core: -j$(nproc), or the job server of `make -jN test`.
JOBS    ?= $(shell nproc 2> /dev/null || echo 1)
test: deps
	@$(MAKE) --no-print-directory $(if $(filter -j%,$(MAKEFLAGS)),,-j$(JOBS)) all unit-bins
	@tests/run-all.sh

unit-bins: $(UNIT_BIN) $(BENCH_BIN) $(TEST_BIN) $(ATTACK_SO)

fuzz:
	@command -v clang >/dev/null || { echo "make fuzz needs clang (scripts/deps.sh)"; exit 1; }
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-bins

fuzz-bins: $(FUZZ_BIN)

test-unit: all unit-bins
	@tests/run-unit.sh $(BUILD)

test-san:
	@$(MAKE) --no-print-directory SAN=1 all unit-bins
	@SAN=1 tests/run-unit.sh build-san

valgrind: all unit-bins
	@VALGRIND=1 tests/run-unit.sh $(BUILD)

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

# `make bench`: the DelayedFlights matrix (awk, plain, encrypted, enclave,
# each unchained and chained, on Lua 5.4 and, when LuaJIT is installed,
# on bin/sstream-luajit) at BENCH_ROWS rows (bench/run.sh)
BENCH_ROWS ?= 28000000
bench: deps
	@$(MAKE) --no-print-directory all unit-bins
	@if pkg-config --exists luajit; then \
	    $(MAKE) --no-print-directory LUA=luajit all; fi
	@bench/run.sh $(BENCH_ROWS)

# `make format`: clang-format (.clang-format) on the C files changed
# against main, committed or not; FILES="a.c b.h" for others, FILES=all
# for every file under include/ src/ tests/ bench/.
FILES ?=
format:
	@files="$(FILES)"; \
	if [ "$$files" = all ]; then \
	    files=$$(git ls-files '*.c' '*.h' | grep -E '^(include|src|tests|bench)/'); \
	elif [ -z "$$files" ]; then \
	    files=$$( (git diff --name-only --diff-filter=AM main -- '*.c' '*.h'; \
	               git ls-files --others --exclude-standard -- '*.c' '*.h') | sort -u); \
	fi; \
	if [ -z "$$files" ]; then echo "format: no changed C file"; \
	else echo "clang-format -i $$files"; clang-format -i $$files; fi

# `make check`: cppcheck's warning, performance and portability checks on
# src/; a finding fails it. Known false positives, with their reasons, are
# in scripts/cppcheck.supp.
check:
	cppcheck --enable=warning,performance,portability --std=c11 --quiet \
	    --error-exitcode=1 --suppressions-list=scripts/cppcheck.supp \
	    -D_GNU_SOURCE -Iinclude -Isrc src

clean:
	rm -rf build build-san build-luajit build-san-luajit build-fuzz bin

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(HOOK_OBJ:.o=.d) \
         $(BUILD)/$(ENC_MAIN:.c=.d)
