# The two commands a newcomer needs: `make run` and `make test`.
# Both install what a fresh Debian machine lacks (libclang-dev, for RocksDB's bindings) first.

CARGO ?= cargo

.PHONY: run test deps build check

# The binaries are run straight from the target directory: `cargo run -p ...` would resolve the
# workspace's features differently and compile RocksDB a second time.
BIN = $(or $(CARGO_TARGET_DIR),target)/debug

run: deps
	$(CARGO) build --workspace --bins
	@echo "binaries are in $(abspath $(BIN)): export PATH=\"$(abspath $(BIN)):\$$PATH\" to use tallyctl and tally-pay"
	$(BIN)/tally-node dev

test: deps
	$(CARGO) test --workspace

build: deps
	$(CARGO) build --workspace --all-targets

check: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

deps:
	@scripts/install-deps
