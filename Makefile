# streamgate: the one test command is `make test`.
GO        ?= go
FUZZTIME  ?= 10s
PKGS      := ./...

.PHONY: test vet staticcheck unit fuzz bench fmt

test: vet staticcheck unit

vet:
	$(GO) vet $(PKGS)

staticcheck:
	$(GO) tool staticcheck $(PKGS)

unit:
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

# fuzz runs every Fuzz target in the module for FUZZTIME each.
fuzz:
	./scripts/fuzz-all.sh $(FUZZTIME)

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

fmt:
	gofmt -l -w .
