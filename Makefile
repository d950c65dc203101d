SHELL := /bin/bash
# The two commands a newcomer needs: `make demo` and `make test`. Both install
# the Debian packages first (scripts/install-deps.sh, idempotent).
PRESET ?= release
BUILD := build/$(PRESET)
OUT ?= out

.PHONY: deps build demo test bench asan tsan fuzz proof-long mutate clean

deps:
	@scripts/install-deps.sh

build: deps
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build --preset $(PRESET)

# One bundled workflow on one bundled profile under two policies, side by side.
demo: build
	@mkdir -p $(OUT)
	$(BUILD)/residency replay traces/examples/wan22-14b-t2v.jsonl --profile rtx5090-96g \
	  --policy drop --compare ram-lru --timeline $(OUT)/timeline.json --svg $(OUT)/memory.svg

test: build
	@ctest --preset $(PRESET) -j2

bench: build
	@cmake --build --preset $(PRESET) --target residency_bench residency_http_bench residency_freed_memory_bench
	$(BUILD)/bench/residency_bench --benchmark_min_time=0.5

# Under ASan the property tests run 200 cases each with the fixed seed only
# (SameSeedSameEventLog 60); `make test` runs 3,400 per seed, two seeds.
asan:
	@RESIDENCY_PROPERTY_CASES=$${RESIDENCY_PROPERTY_CASES:-200} RESIDENCY_FIXED_SEED_ONLY=1 $(MAKE) test PRESET=asan

# The long proof: every property over several seeds, PROOF_CASES each
# (4 x 50,000 = 200,000 cases per property by default; about 2.5 h on 2 cores).
# Not in CI; its last figures are in docs/BENCHMARKS.md.
PROOF_SEEDS ?= 1 3 5 6
PROOF_CASES ?= 50000
proof-long: build
	@for seed in $(PROOF_SEEDS); do \
	  RC_PARAMS="max_success=$(PROOF_CASES) seed=$$seed" ctest --test-dir $(BUILD) -j2 --timeout 7200 \
	    -R '^(Properties|Stateful)\.' --output-on-failure || exit 1; \
	done

# One-line mutants of the engine, safetensors checks and executor, each built
# and tested in a copy of the tree (scripts/mutate.py; MUTATE_ARGS, e.g.
# --tests REGEX --only 1,2 --keep DIR). Not in CI; the last score is in
# docs/BENCHMARKS.md.
mutate: deps
	@python3 scripts/mutate.py $(MUTATE_ARGS)

# The threaded code under ThreadSanitizer: the runtime (reader, executor,
# devices, loader) and the harness (parallel sweeps, the HTTP agent).
tsan: deps
	@cmake --preset tsan >/dev/null
	@cmake --build --preset tsan --target residency_runtime_tests residency_harness_tests
	RESIDENCY_DATA_DIR=$(CURDIR)/traces TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  build/tsan/tests/residency_runtime_tests
	RESIDENCY_DATA_DIR=$(CURDIR)/traces TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  build/tsan/tests/residency_harness_tests

# Every parser under libFuzzer (clang, ASan+UBSan) for FUZZ_SECONDS each,
# starting from the seed corpus in tests/fuzz/corpus. A crash fails the
# target and leaves its input in build/fuzz/.
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := safetensors trace profile agent comfy_log recorded_runs gate
fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus-$$t && cp tests/fuzz/corpus/$$t/* build/fuzz/corpus-$$t/ && \
	  build/fuzz/tests/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=4096 \
	    -artifact_prefix=build/fuzz/ -print_final_stats=1 build/fuzz/corpus-$$t 2>&1 | \
	    grep -E "^(Done|stat::number_of_executed_units|==[0-9]+==ERROR)|SUMMARY" ; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

clean:
	rm -rf build $(OUT)
