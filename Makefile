# distrotest — developer entry points. See README.md.
GO ?= go
export CGO_ENABLED ?= 0

.PHONY: setup build demo test test-unit test-vm check-generated lint bench

setup: ## install host tools from Debian packages (idempotent)
	@bash scripts/setup.sh

build: ## build both binaries into ./bin
	$(GO) build -o bin/ ./cmd/distrotest ./cmd/distrotest-gen

demo: setup build ## build+patch a Debian 13 image, boot it, run examples/hello.py
	./bin/distrotest run --image debian/13 examples/hello.py

test: setup ## everything CI runs: lint, unit tests, generated-file drift, VM tests, Nix layer
	bash scripts/test.sh

test-unit: ## unit tests only (no VM)
	$(GO) test ./...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...

check-generated:
	$(GO) run ./cmd/distrotest-gen gen --check

bench: ## benchmarks (patch vs virt-customize needs: scripts/setup.sh --bench)
	bash scripts/bench.sh
