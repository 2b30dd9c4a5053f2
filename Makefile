# shardproxy: make demo, make test; everything else is for developers.
GO        ?= go
BIN       := bin/shardproxy
PKGS_UNIT := $(shell $(GO) list ./... 2>/dev/null | grep -v /test)
PKGS_INT  := $(shell $(GO) list ./test/... 2>/dev/null)

.PHONY: build demo test unit integration bench fuzz lint deps-demo deps-test deps-bench clean

build:
	$(GO) build -o $(BIN) ./cmd/shardproxy

deps-demo:
	@scripts/deps.sh demo
deps-test:
	@scripts/deps.sh test
deps-bench:
	@scripts/deps.sh bench

demo: deps-demo build
	$(BIN) demo

# Unit packages run under -race; integration packages (real PostgreSQL) run
# without it, one package at a time.
test: deps-test
	$(GO) vet ./...
	$(GO) test -race -count=1 $(PKGS_UNIT)
	@if [ -n "$(PKGS_INT)" ]; then $(GO) test -count=1 -p 1 -timeout 20m $(PKGS_INT); fi

bench: deps-bench build
	scripts/bench.sh

FUZZTIME ?= 30s
# Every fuzz target that decodes bytes from the network; seeds and found
# inputs live in each package's testdata/fuzz/.
FUZZ_TARGETS := wire:FuzzReadFrame wire:FuzzStartupPacket wire:FuzzSCRAMClientFirst \
	wire:FuzzSCRAMClientFinal planner:FuzzAnalyze planner:FuzzPlainStatement planner:FuzzBareTransactionControl planner:FuzzBuild catalog:FuzzParseSearchPath \
	copysplit:FuzzSplit router:FuzzBinaryCopy router:FuzzTextArray router:FuzzPortalRunAhead \
	admin:FuzzSplitRequest console:FuzzConsoleQuery
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test ./$$pkg/ -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

lint:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt needed"; exit 1; }

clean:
	rm -rf bin
