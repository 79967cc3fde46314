# semidpo: install what a fresh machine lacks, build, run the quickstart, run the tests.
APT_PACKAGES := liblua5.4-dev libopenblas-dev libyaml-dev zlib1g-dev pkg-config libopenmpi-dev openmpi-bin
SWIFT ?= swift
BIN := .build/release/semidpo

.PHONY: all deps build quickstart test bench fuzz clean

all: quickstart

# Installs the system libraries once; does nothing when they are present.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build -c release

quickstart: build
	$(BIN) run recipes/quickstart.lua

test: deps
	$(SWIFT) test

bench: build
	$(BIN) bench

# Builds the parsers' libFuzzer targets into .build-fuzz and runs each for FUZZ_SECONDS
# (docs/formats.md, "Fuzzing"); exits non-zero if any target crashed.
FUZZ_SECONDS ?= 60
fuzz: deps
	SWIFT=$(SWIFT) fuzz/run.sh $(FUZZ_SECONDS)

clean:
	rm -rf .build .build-fuzz
