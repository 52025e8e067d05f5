# kernelhost — make targets. Only Go is required; `contracts` and `testdata`
# install clang/lld/wabt with apt when they are missing.
GO            ?= go
GO_TEST_FLAGS ?= -race
BENCH         ?= .
BENCHTIME     ?= 1s
FUZZTIME      ?= 20s
STATICCHECK   ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build test test-run test-warm test-norace test-allocs vet vet-race fmt fmt-check lint bench demo contracts examples testdata tools clean check fuzz

all: build

build:
	$(GO) build ./...

## TEST_FIRST: the packages whose tests run longest under -race (on 2
## cores: cmd/kernelhost's CLI and multi-node tests about two minutes;
## host, internal/hostile and fuel half a minute each, now that test-warm
## compiles their Go guests and test-norace runs fuel's spec suite; every
## other package less), longest first, named before ./... so that they
## start first: go test starts test binaries in the order of its arguments,
## -p (the number of CPUs) at a time, and the rest then fills the other
## slot instead of queueing ahead of the longest and leaving one CPU idle
## at the end.
TEST_FIRST ?= ./cmd/kernelhost ./host ./internal/hostile ./host/internal/fuel

## test: gofmt check, go vet, then test-run with a temporary directory of
## its own ($$TMPDIR, under the one it was given), which it removes at the
## end, pass, fail or interrupt, naming what the tests left there (their
## t.TempDir()s are gone already; a process killed mid-test, a server's
## files, go's build directories of an interrupted run are not). What stays
## between runs is outside it: go's build and test caches ($$(go env
## GOCACHE)) and the tests' wazero compilation cache
## (internal/testenv.CacheRoot: ~/.cache/kernelhost/test-wazero-cache, or
## $$KERNELHOST_TEST_CACHE), which make a warm run fast. The directory is
## 0755, not mktemp's 0700: under root the PostgreSQL tests run initdb and
## postgres as nobody (internal/testenv/pgtest), which must reach their
## directory inside it.
test: fmt-check vet-race
	@tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/kernelhost-test.XXXXXX") || exit 1; \
	  chmod 755 "$$tmp"; \
	  trap 'left=$$(ls -A "$$tmp" 2>/dev/null | head -20 | tr "\n" " "); \
	    if [ -n "$$left" ]; then echo "test: removing $$(du -sh "$$tmp" | cut -f1) the tests left in $$tmp: $$left"; fi; \
	    chmod -R u+w "$$tmp" 2>/dev/null; rm -rf "$$tmp"' EXIT; \
	  trap 'exit 130' INT TERM HUP; \
	  TMPDIR="$$tmp" $(MAKE) --no-print-directory test-run TMPDIR="$$tmp"

## NORACE_TESTS: tests that test-norace runs without the race detector
## instead of under it (the race run skips them): CPU-bound checks of
## host/internal/fuel's pass that run guests on one goroutine (wazero
## without WithCloseOnContextDone starts none), whose cost the detector
## multiplies and where it has no concurrency to check. Under -race, on a
## warm cache: TestFuelPassSpecSuite (the WebAssembly spec testsuite) 154 s
## of CPU for one of the pass's four variants, without it about 30 s for
## all four, assert_exhaustion included (host/internal/fuel/COSTS.md,
## "Spec testsuite"); TestFuel_contractDeterministic (100 fresh instances
## of the Go contract), TestFuel_runaways (100 runs of each runaway, deep
## recursion growing wazero's stack), TestFuel_stackLimit and
## TestTrackPagesExact about 50 s together, 8 s without. The rest of the
## package (the fuzz seeds, the generated modules, the contracts' decisions)
## still runs under -race.
NORACE_TESTS ?= ^(TestFuelPassSpecSuite|TestFuel_contractDeterministic|TestFuel_runaways|TestFuel_stackLimit|TestTrackPagesExact)$$
NORACE_PKGS  ?= ./host/internal/fuel

## test-run: test-warm, every test under the race detector but
## NORACE_TESTS, then test-norace and test-python; `make test` runs it in a temporary
## directory of its own. The race run goes through internal/testenv/gotest:
## plain go test output, then one line naming every skipped test; a failure
## still fails. It runs with -vet=off: go test's own vet pass is a subset
## of the analyzers vet-race ran on the same files.
test-run: test-warm
	GO=$(GO) $(GO) run ./internal/testenv/gotest -vet=off $(GO_TEST_FLAGS) -skip '$(NORACE_TESTS)' $(TEST_FIRST) ./...
	@$(MAKE) --no-print-directory test-norace
	@$(MAKE) --no-print-directory test-python

## test-warm: compile, without the race detector, what the race run would
## otherwise compile under it in several processes at once on an empty
## cache (CI): the standard library for GOOS=wasip1 with the flags of the
## tests that rebuild the committed Go guests (contracts-wasm/rights,
## examples/*: about 24 s of CPU, once; each of those tests compiled it
## again when they ran side by side), and the large Go guests into the
## tests' shared wazero caches (the -warm flag of the test binaries of
## internal/testworld and cmd/kernelhost, which report different wazero
## versions and so use different caches, and of host and
## host/internal/fuel, which compile Go guests in forms of their own):
## under -race each took ~80 s of CPU to compile, once per test process
## that met it first, ~8 s without. On warm caches it takes seconds.
test-warm:
	GOOS=wasip1 GOARCH=wasm GOFLAGS= CGO_ENABLED=0 $(GO) build -buildmode=c-shared -trimpath -buildvcs=false -ldflags=-buildid= -o /dev/null ./contracts-wasm/rights
	$(GO) test -count=1 -run '^$$' ./host ./host/internal/fuel ./internal/testworld ./cmd/kernelhost -args -warm

## test-norace: the allocation-count tests (test-allocs) and NORACE_TESTS,
## without the race detector, in one go test run (through gotest, which
## names what skipped), with go test's vet on: its packages hold every
## file that vet-race does not see.
test-norace:
	@pkgs=$$( { $(ALLOC_PKGS); echo $(NORACE_PKGS); } | tr ' ' '\n' | sort -u | tr '\n' ' '); \
	  echo "$(GO) test -count=1 -run '(_allocs|Allocations)$$|$(NORACE_TESTS)' $$pkgs"; \
	  GO=$(GO) $(GO) run ./internal/testenv/gotest -count=1 -run '(_allocs|Allocations)$$|$(NORACE_TESTS)' $$pkgs

## test-allocs: the allocation-count tests (func TestX_allocs or
## TestXAllocations in a _test.go file) without the race detector, which
## allocates on its own: under -race they skip or prove nothing.
ALLOC_PKGS = grep -rlE --include='*_test.go' '^func Test[A-Za-z0-9_]*(_allocs|Allocations)\(' . | grep -v '^./bench/' | xargs -n1 dirname | sort -u
test-allocs:
	@pkgs=$$($(ALLOC_PKGS) | tr '\n' ' '); \
	  echo "$(GO) test -count=1 -run '(_allocs|Allocations)$$' $$pkgs"; \
	  $(GO) test -count=1 -run '(_allocs|Allocations)$$' $$pkgs

## test-python: the Python client's tests (clients/python/tests) and the
## Python agents example (examples/agents-python), against a kernelhost
## binary built here into a temporary directory; python3 3.9 or later,
## standard library only. Without such a python3 they are skipped (said
## so), unless KERNELHOST_REQUIRE_PYTHON=1 (.ci/run), which fails instead.
PYTHON ?= python3
.PHONY: test-python
test-python:
	@if ! $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then \
	  if [ "$$KERNELHOST_REQUIRE_PYTHON" = 1 ]; then echo "test-python: no $(PYTHON) 3.9 or later, and KERNELHOST_REQUIRE_PYTHON=1"; exit 1; fi; \
	  echo "test-python: SKIPPED: no $(PYTHON) 3.9 or later"; exit 0; \
	fi; \
	bin=$$(mktemp -d "$${TMPDIR:-/tmp}/kernelhost-py.XXXXXX") || exit 1; trap 'rm -rf "$$bin"' EXIT; \
	echo "$(GO) build -o $$bin/kernelhost ./cmd/kernelhost"; $(GO) build -o "$$bin/kernelhost" ./cmd/kernelhost || exit 1; \
	echo "$(PYTHON) -m unittest discover -s clients/python/tests -t clients/python"; \
	KERNELHOST_BIN="$$bin/kernelhost" $(PYTHON) -m unittest discover -s clients/python/tests -t clients/python || exit 1; \
	echo "$(PYTHON) -m unittest discover -s examples/agents-python -t examples/agents-python"; \
	KERNELHOST_BIN="$$bin/kernelhost" PYTHONPATH=clients/python $(PYTHON) -m unittest discover -s examples/agents-python -t examples/agents-python

vet:
	$(GO) vet ./...

## vet-race: go vet -race, as make test runs it: vet then builds every
## package as the race run builds it, which finds them built. (On an empty
## build cache a plain go vet built every package without -race first:
## about 220 s of CPU on 2 cores that no later step reused.) The files
## built only without the race detector (norace_test.go) are vetted by
## test-norace, whose go test vets what it builds.
vet-race:
	$(GO) vet -race ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

lint: vet
	$(GO) run $(STATICCHECK) ./...

## bench: the main module's benchmarks, then the peer comparison (bench/peers,
## its own module: cedar-go, OPA), as one markdown table (bench/table, with the
## ratio of every row to the native floor). Raw output goes to stderr.
## BENCH and BENCHTIME select and lengthen the main module's part.
bench:
	@{ $(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) ./... ; \
	   $(MAKE) -s bench-peers-raw; } 2>&1 | tee /dev/stderr | $(GO) -C bench/table run .

.PHONY: bench-peers bench-peers-raw

## bench-peers: only the peer comparison (needs the module proxy the first time).
bench-peers:
	@$(MAKE) -s bench-peers-raw 2>&1 | tee /dev/stderr | $(GO) -C bench/table run . -floor BenchmarkPolicy/read/native

bench-peers-raw:
	cd bench/peers && $(GO) test -run '^$$' -bench 'Policy' -benchmem -benchtime $(BENCHTIME) . ; \
	  $(GO) test -run '^$$' -bench 'PoolMemory' -benchtime 1x .

## demo: the main job on the embedded default (Badger in a temp dir).
## DEMO_FLAGS=--serve: then serve the demo's world (the API and the
## dashboard at /ui/, whose URL it prints) until interrupted.
DEMO_FLAGS ?=
demo:
	$(GO) run ./cmd/kernelhost demo $(DEMO_FLAGS)

## contracts: rebuild the genesis contracts byte for byte (needs clang + lld)
## and the rights registry (Go).
contracts: tools
	$(MAKE) -C contracts-wasm
	cd contracts-wasm/rights && GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -buildvcs=false -ldflags=-buildid= -o rights.wasm .

## examples: rebuild the committed example modules (Go guests need only Go;
## c-contract needs clang 14 + lld, wat-contract needs wabt).
examples:
	cd examples/go-contract && GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -buildvcs=false -ldflags=-buildid= -o freeware.wasm .
	cd examples/go-executable && GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -buildvcs=false -ldflags=-buildid= -o counter.wasm .
	cd examples/rights-market/escrow && GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -buildvcs=false -ldflags=-buildid= -o escrow.wasm .
	cd examples/c-contract && clang --target=wasm32 -O2 -nostdlib -ffreestanding -fno-ident -Wall -Wextra -Werror -I../../abi \
	  -Wl,--no-entry -Wl,--strip-all -Wl,-z,stack-size=16384 -Wl,--stack-first -o pay_per_read.wasm src/pay_per_read.c
	cd examples/wat-contract && wat2wasm -o frozen.wasm frozen.wat

## testdata: rebuild committed test modules from their WAT sources (needs wabt).
testdata: tools
	$(MAKE) -C host/testdata
	$(MAKE) -C internal/hostile/testdata

## fuzz: run every fuzzer of the main module (every func FuzzX in a _test.go
## file) for FUZZTIME each. `make test` runs their seed corpora.
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./bench/' | sort); do \
	  dir=$$(dirname $$f); \
	  for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "$(GO) test -run '^$$' -fuzz '^$$name$$' -fuzztime $(FUZZTIME) $$dir"; \
	    $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$dir; \
	  done; \
	done

tools:
	@command -v clang >/dev/null && command -v wasm-ld >/dev/null && command -v wat2wasm >/dev/null || \
	  { echo "installing clang lld wabt with apt"; apt-get update -qq && apt-get install -y -qq clang lld wabt; }
	@# PostgreSQL for store/postgres's tests (internal/testenv/pgtest); Debian keeps initdb off PATH.
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { echo "installing postgresql with apt"; apt-get update -qq && apt-get install -y -qq postgresql; }
	@# python3 (3.9 or later) for the Python client's tests (make test-python).
	@command -v python3 >/dev/null || { echo "installing python3 with apt"; apt-get update -qq && apt-get install -y -qq python3; }
	@# Chromium for the dashboard's browser tests (cmd/kernelhost, chromedp).
	@command -v chromium >/dev/null || { echo "installing chromium with apt"; apt-get update -qq && apt-get install -y -qq chromium; }

check: lint fmt-check
	$(GO) mod tidy
	@git diff --exit-code -- go.mod go.sum || { echo "go mod tidy changed go.mod/go.sum"; exit 1; }

clean:
	$(GO) clean -testcache
	rm -rf kernelhost-data
