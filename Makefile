# SecureStreams build. `make` builds bin/sstream; `make test` runs every
# test; `make demo` runs DelayedFlights; `make bench` runs the benchmarks.
# Build types: `make SAN=1` (ASan+UBSan, into build-san/), `make valgrind`.

CC      ?= cc
PKGS    := lua5.4 libzmq libsodium libseccomp yaml-0.1 msgpack
SAN     ?= 0
OPT     ?= -O2

ifeq ($(SAN),1)
BUILD   := build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
OPT     := -O1 -g
else
BUILD   := build
SANFLAGS :=
endif

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter -Werror
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) -g $(WARN) $(SANFLAGS) \
           -Iinclude -Isrc -I$(BUILD)/gen $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lpthread -lm -lrt
LDFLAGS += $(SANFLAGS)

LIB_SRC  := $(sort $(wildcard src/core/*.c src/wire/*.c src/net/*.c \
            src/lua/*.c src/crypto/*.c src/enclave/*.c src/gen/*.c src/node/*.c \
            src/run/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
LUA_MODS := $(sort $(wildcard src/lua/lua/*.lua))
GEN_C    := $(BUILD)/gen/ss_lua_embed.c
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/ss_lua_embed.o
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/libsstream.a
BIN      := bin/sstream$(if $(filter 1,$(SAN)),-san,)

UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all deps test test-unit test-lua test-integration test-san valgrind \
        demo bench clean format check

all: $(BIN)

deps:
	@scripts/deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(GEN_C): $(LUA_MODS) scripts/embed-lua.sh
	@mkdir -p $(dir $@)
	scripts/embed-lua.sh $@ $(LUA_MODS)

$(BUILD)/gen/ss_lua_embed.o: $(GEN_C)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	@mkdir -p bin
	$(CC) $(LDFLAGS) $(CLI_OBJ) $(LIB) $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(LIB) $(LDLIBS) -lcmocka $(LDFLAGS) -o $@

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(LIB) $(LDLIBS) $(LDFLAGS) -o $@

# Every test. This is the command the README gives and .ci/run calls.
test: deps
	@$(MAKE) --no-print-directory all unit-bins
	@tests/run-all.sh

unit-bins: $(UNIT_BIN) $(BENCH_BIN)

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

bench: deps
	@$(MAKE) --no-print-directory all unit-bins
	@bench/run.sh

clean:
	rm -rf build build-san bin

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
