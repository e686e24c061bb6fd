# Set-up and checks. `make demo` and `make test` work on a fresh machine; `make fixtures` needs the toolchains
# named in tests/fixtures/README.md and rewrites the committed .wasm files.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FIX := tests/fixtures
RUSTC ?= /usr/bin/rustc
RUSTFLAGS_WASI := --target wasm32-wasi -g --edition 2021
CLANG ?= clang-14
OBJCOPY ?= llvm-objcopy-14

.PHONY: demo test fixtures bench lint clean .venv-phoenix test-tools

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]' --config-settings editable_mode=compat
	touch $@

demo: $(STAMP)
	@$(BIN)/tracer run examples/panicking-worker/worker.wasm -- unwrap_none; status=$$?; \
	echo; echo "(tracer run exited $$status: 134 means the guest trapped, see docs/cli.md;" \
	  "the run's spans, logs and metrics are under ./telemetry as OTLP/JSON)"

# The collector's end-to-end backend (Arize Phoenix, in its own virtualenv; minutes to install the first time).
.venv-phoenix:
	$(PY) tests/collector/_phoenix.py install

# The oracles and load generator the tests compare against (Debian packages): llvm-symbolizer-14 and friends,
# wasm-objdump, clang-14 with the WASI sysroot (a DWARF 4/5 test builds C), wrk. Node comes with the machine.
TOOLS := llvm-symbolizer-14 llvm-cxxfilt-14 llvm-dwarfdump-14 llvm-objcopy-14 llvm-nm-14 wasm-objdump clang-14 wrk
APT_PACKAGES := llvm-14 wabt clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32 wrk
test-tools:
	@missing=""; for t in $(TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	[ -e /usr/share/wasi-sysroot ] || [ -e /usr/lib/wasm32-wasi ] || missing="$$missing wasi-libc"; \
	if [ -n "$$missing" ]; then \
	  echo "installing test tools (missing:$$missing)"; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	  else echo "not root or no apt-get: install $(APT_PACKAGES) by hand"; fi; \
	fi

test: $(STAMP) .venv-phoenix test-tools
	$(BIN)/python -m pytest -q tests

# Each benchmark runs its reference side by side in the same run; figures go to docs/benchmarks.md.
bench: $(STAMP) test-tools
	$(BIN)/python bench/bench_tracer.py
	$(BIN)/python bench/bench_symbolize.py
	$(BIN)/python bench/bench_collector.py
	$(BIN)/python bench/bench_serve.py

fixtures:
	cd $(FIX) && for o in 0 1 s 3; do \
	  $(RUSTC) $(RUSTFLAGS_WASI) -C opt-level=$$o -o panics-O$$o.wasm panics.rs || exit 1; done
	cd $(FIX) && $(RUSTC) $(RUSTFLAGS_WASI) -C opt-level=1 -C symbol-mangling-version=v0 -o panics-v0.wasm panics.rs
	cd $(FIX) && $(OBJCOPY) --strip-debug panics-O1.wasm panics-O1.stripped.wasm
	cd $(FIX) && $(RUSTC) --target wasm32-unknown-unknown --crate-type cdylib -g -C opt-level=1 --edition 2021 -o lib.wasm lib.rs
	cd $(FIX) && $(CLANG) --target=wasm32-wasi --sysroot=/usr -g -O0 -o trap-c-O0.wasm trap.c
	cd $(FIX) && $(CLANG) --target=wasm32-wasi --sysroot=/usr -g -O1 -o trap-c-O1.wasm trap.c
	mkdir -p examples/panicking-worker && cp $(FIX)/panics-O1.wasm examples/panicking-worker/worker.wasm
	cd examples/echo-worker && $(RUSTC) $(RUSTFLAGS_WASI) -C opt-level=1 -o echo-worker.wasm src/main.rs

clean:
	rm -rf $(VENV) .venv-phoenix build dist *.egg-info
