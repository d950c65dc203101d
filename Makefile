# The two commands a newcomer needs: `make demo` and `make test`. Both install
# the Debian packages first (scripts/install-deps.sh, idempotent).
PRESET ?= release
BUILD := build/$(PRESET)
OUT ?= out

.PHONY: deps build demo test bench asan tsan clean

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
	$(BUILD)/bench/residency_bench --benchmark_min_time=0.5

asan:
	@$(MAKE) test PRESET=asan

tsan:
	@$(MAKE) test PRESET=tsan

clean:
	rm -rf build $(OUT)
