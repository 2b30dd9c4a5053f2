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
fuzz:
	$(GO) test ./wire/ -run '^$$' -fuzz FuzzSCRAMClientFirst -fuzztime $(FUZZTIME)
	$(GO) test ./wire/ -run '^$$' -fuzz FuzzSCRAMClientFinal -fuzztime $(FUZZTIME)

lint:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt needed"; exit 1; }

clean:
	rm -rf bin
