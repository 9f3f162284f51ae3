# Quick start: `make run` and `make test` on a Debian machine with the Swift toolchain.
SWIFT ?= swift
MODEL ?= weights/banking77
TRIAGE := .build/release/triage

.PHONY: deps build build-cli-only run serve test bench serve-bench clean fixtures

deps:
	@scripts/install-deps.sh

# A release build; the Swift runtime is linked statically so the binary needs only
# glibc, OpenBLAS and libcurl on the machine it runs on.
build: deps
	$(SWIFT) build -c release --product triage --static-swift-stdlib

# The same binary without `triage serve` (no SwiftNIO, no Hummingbird): see README.
build-cli-only: deps
	TRIAGE_CLI_ONLY=1 $(SWIFT) build -c release --product triage --static-swift-stdlib --scratch-path .build-cli-only

SAMPLES = "I still have not received my new card, it has been two weeks" \
	"How do I top up my account with Apple Pay?" \
	"I was charged twice for the same coffee, can you refund one?" \
	"What is the weather like in Paris tomorrow?"

# The main job on the shipped model: classify, then answer offline (no network, no record).
run: build
	$(TRIAGE) classify --model $(MODEL) $(SAMPLES)
	@echo
	$(TRIAGE) ask --offline --record-off --model $(MODEL) $(SAMPLES)

# The HTTP service on 127.0.0.1:3000 with the shipped INT8 model (SERVE_FLAGS adds options).
serve: build
	$(TRIAGE) serve --model $(MODEL) --int8 $(SERVE_FLAGS)

# Release mode: the instruction-set modules inline the shared kernels only when optimising,
# so only a release build really compares the AVX-512, AVX2 and portable code paths.
# The fleet tests need a PostgreSQL server: with-postgres.sh starts a throwaway one for the run.
test:
	@scripts/install-deps.sh --test
	scripts/with-postgres.sh $(SWIFT) test -c release --enable-testable-imports

bench: build
	$(TRIAGE) bench --model $(MODEL)

# Load test of `triage serve` with wrk (see tools/serve_bench.py).
serve-bench: build
	python3 tools/serve_bench.py

# Regenerates every fixture with the Python references (needs network access to PyPI once).
fixtures:
	tools/setup_venv.sh
	tools/.venv/bin/python tools/gen_unicode_tables.py
	tools/.venv/bin/python tools/gen_tokenizer_fixtures.py
	tools/.venv/bin/python tools/gen_parity_fixtures.py

clean:
	rm -rf .build
