# streamgate: the one test command is `make test`.
GO        ?= go
FUZZTIME  ?= 10s
PKGS      := ./...
NODE_DIR  := interop/node

.PHONY: test vet staticcheck unit node-deps fuzz bench fmt

test: vet staticcheck unit

vet:
	$(GO) vet $(PKGS)

staticcheck:
	$(GO) tool staticcheck $(PKGS)

unit: node-deps
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

# node-deps installs the official Node SDKs of the interop test
# (interop/node) from the committed lockfile, when they are missing or the
# lockfile changed. Without Node.js the interop test skips itself.
node-deps:
	@if command -v node >/dev/null 2>&1; then \
	  if [ ! -f $(NODE_DIR)/node_modules/.package-lock.json ] || \
	     [ $(NODE_DIR)/package-lock.json -nt $(NODE_DIR)/node_modules/.package-lock.json ]; then \
	    cd $(NODE_DIR) && npm ci --no-audit --no-fund; \
	  fi; \
	else \
	  echo "node-deps: Node.js is not installed; the Node SDK interop test will skip"; \
	fi

# fuzz runs every Fuzz target in the module for FUZZTIME each.
fuzz:
	./scripts/fuzz-all.sh $(FUZZTIME)

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

fmt:
	gofmt -l -w .
