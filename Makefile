# Thin wrapper over meson so the README's commands stay one word each.
#   make run    install missing packages, build, run bxd on its embedded default
#   make test   install missing packages, build, run the fast test suite
#   make asan   the fast suite under AddressSanitizer + UBSan (clang)
#   make bench  the perf suite (benchmarks; prints JSON lines)
#   make style  clang-format check, clang-tidy and the forbidden-token check
BUILD ?= build
ASAN_BUILD ?= build-asan
MESON_ARGS ?=

.PHONY: all deps build run test asan bench style clean

all: build

deps:
	@sh scripts/deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_ARGS)

build: deps $(BUILD)/build.ninja
	meson setup --reconfigure $(BUILD) >/dev/null
	ninja -C $(BUILD)

run: build
	sh scripts/run-dev.sh $(BUILD)

test: build
	meson test -C $(BUILD) --suite fast --print-errorlogs

asan: deps
	[ -f $(ASAN_BUILD)/build.ninja ] || CC=clang meson setup $(ASAN_BUILD) \
		-Db_sanitize=address,undefined -Db_lundef=false
	ninja -C $(ASAN_BUILD)
	BX_DEBUG_POOL=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C $(ASAN_BUILD) --suite fast --print-errorlogs

bench: build
	meson test -C $(BUILD) --suite perf --verbose

style: build
	sh scripts/check-style.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
