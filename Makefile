# gatecache — thin wrapper over CMake.
#   make          build (release with debug info) into build/
#   make run      install deps, build, start the demo origin and gatecache on examples/
#   make test     install deps, build, run unit + e2e + fuzz-corpus replay, then all of it
#                 again under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
#   make fuzz     libFuzzer on every target for FUZZ_SECONDS each (clang, build-fuzz/)
#   make tsan     unit tests and multi-worker e2e under ThreadSanitizer (build-tsan/)
#   make lint     clang-tidy with the checked-in .clang-tidy
#   make bench    benchmarks (see bench/README.md)
BUILD       ?= build
ASAN_BUILD  ?= build-asan
TSAN_BUILD  ?= build-tsan
FUZZ_BUILD  ?= build-fuzz
JOBS        ?= $(shell nproc)
FUZZ_SECONDS ?= 60
TEST_FUZZ_SECONDS ?= 5
TEST_LOAD_SECONDS ?= 5
CTEST       = ctest --output-on-failure -j$(JOBS)

.PHONY: all deps build run test test-plain test-asan test-fuzz-short e2e load fuzz tsan lint bench clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

run: build
	@scripts/run-demo.sh $(BUILD)/gatecache

test: build test-plain test-asan tsan test-fuzz-short
	@echo "make test: all suites passed (plain, ASan+UBSan, TSan, short fuzz runs)"

# A short libFuzzer run of every target (the corpora are also replayed by ctest).
test-fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)

test-plain: build
	cd $(BUILD) && $(CTEST)
	GATECACHE_BIN=$(CURDIR)/$(BUILD)/gatecache tests/e2e/run.sh
	GATECACHE_BIN=$(CURDIR)/$(BUILD)/gatecache tests/node/run.sh
	GATECACHE_BIN=$(CURDIR)/$(BUILD)/gatecache LOAD_SECONDS=$(TEST_LOAD_SECONDS) tests/load/run.sh

# The bounded load scripts (tests/load/README.md) at their full default length.
load: build
	GATECACHE_BIN=$(CURDIR)/$(BUILD)/gatecache tests/load/run.sh

test-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DGATE_ASAN=ON -DGATE_UBSAN=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(CTEST)
	GATECACHE_BIN=$(CURDIR)/$(ASAN_BUILD)/gatecache GATECACHE_SANITIZED=1 tests/e2e/run.sh
	GATECACHE_BIN=$(CURDIR)/$(ASAN_BUILD)/gatecache GATECACHE_SANITIZED=1 tests/node/run.sh

e2e: build
	GATECACHE_BIN=$(CURDIR)/$(BUILD)/gatecache tests/e2e/run.sh

fuzz: deps
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DGATE_FUZZ=ON -DGATE_ASAN=ON -DGATE_UBSAN=ON \
	    -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS)
	@scripts/run-fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

tsan: deps
	@CC=clang cmake -S . -B $(TSAN_BUILD) -DGATE_TSAN=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(TSAN_BUILD) -j$(JOBS)
	cd $(TSAN_BUILD) && TSAN_OPTIONS=halt_on_error=1 $(CTEST) -L unit
	GATECACHE_BIN=$(CURDIR)/$(TSAN_BUILD)/gatecache GATECACHE_SANITIZED=1 tests/e2e/run.sh

lint: build
	@cmake -S . -B $(BUILD) -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
	clang-tidy -p $(BUILD) --quiet $(shell find src -name '*.c')

bench: build
	@bench/run.sh $(BUILD)/gatecache

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
