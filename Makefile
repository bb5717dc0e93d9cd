# The two commands a newcomer needs: `make run` and `make test`.
# Both install what a fresh Debian machine lacks (libclang-dev, for RocksDB's bindings) first.

CARGO ?= cargo

.PHONY: run test deps build check

run: deps
	$(CARGO) build --workspace --bins
	@echo "binaries are in target/debug: export PATH=\"$$PWD/target/debug:$$PATH\" to use tallyctl"
	$(CARGO) run -p tally-node --bin tally-node -- dev

test: deps
	$(CARGO) test --workspace

build: deps
	$(CARGO) build --workspace --all-targets

check: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

deps:
	@scripts/install-deps
