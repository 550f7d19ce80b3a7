# Shortcuts for what the README describes. `make test` is the README's one
# test command (./e2e/test.sh), which also runs the lint; the other targets
# are its parts, for a quicker loop.

.PHONY: test lint fmt unit fuzz bench run

test: ## the whole suite, as CI runs it: lint, unit, fuzz seeds, e2e against the real peers
	./e2e/test.sh

lint: ## gofmt, go vet and the layering check (layering_test.go), as test.sh runs them
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet ./...
	go test -count=1 -run '^TestLayering' .

fmt: ## rewrite the sources with gofmt
	gofmt -w .

unit: ## the unit tests only (the e2e tests skip outside ./e2e/test.sh)
	go test ./...

fuzz: ## every fuzz target for FUZZTIME (60s), watching memory
	./e2e/fuzz.sh

bench: ## the benchmarks, with their ratios against baselines of the same run
	./e2e/test.sh -run '^$$' -bench 'DilationThroughput|Forwarding' -benchtime 1x

run: ## build and start the app
	go run .
