# btcpipe: build, demo, test, fuzz and lint. Needs only Go (and bash); it
# installs everything else it uses. `make help` lists the targets.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
BIN := $(CURDIR)/bin

# The btcd every test and the demo run against (see internal/btcdtest).
BTCD_VERSION := v0.26.2
BTCD := $(BIN)/btcd

# staticcheck, pinned; v0.8.2 runs with Go 1.26.
STATICCHECK_VERSION := v0.8.2

TEST_TIMEOUT ?= 20m
FUZZTIME ?= 60s
# Packages whose Fuzz* targets `make fuzz` runs (only those that exist).
FUZZ_DIRS := $(wildcard wire stages)
FUZZ_DIRS += $(wildcard netreach bip324)

# The race detector needs cgo; without a C compiler the tests run without it.
RACE := $(if $(filter 1,$(shell $(GO) env CGO_ENABLED)),-race,)

.PHONY: help build btcd demo demo-debug test bench fuzz lint clean memory-figures

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  Variables: FUZZTIME=$(FUZZTIME) TEST_TIMEOUT=$(TEST_TIMEOUT) DEMO_DURATION (default 15s)"

build: ## Build bin/btcpipe
	$(GO) build -o bin/btcpipe ./cmd/btcpipe

btcd: $(BTCD) ## Install the pinned btcd (v0.26.2) into bin/, only if missing

$(BTCD):
	GOBIN=$(BIN) GOFLAGS= GOWORK=off CGO_ENABLED=0 $(GO) install github.com/btcsuite/btcd@$(BTCD_VERSION)

demo: build btcd ## Run btcpipe against a local regtest btcd for DEMO_DURATION (default 15s)
	$(GO) run ./internal/demo -btcd bin/btcd -btcpipe bin/btcpipe

demo-debug: build btcd ## Same as demo with BTCPIPE_LOG_LEVEL=debug
	BTCPIPE_LOG_LEVEL=debug $(GO) run ./internal/demo -btcd bin/btcd -btcpipe bin/btcpipe

test: btcd postgres chromium ## Run all tests with the race detector, in shuffled order
	$(if $(RACE),,@echo "note: cgo is off (no C compiler?), so the tests run without -race")
	$(GO) test $(RACE) -shuffle=on -count=1 -timeout=$(TEST_TIMEOUT) ./...
	@# Allocation counts are meaningless under -race, where those tests skip:
	@# run them again without it, so the zero-allocation claims are checked.
	$(if $(RACE),$(GO) test -shuffle=on -count=1 -run 'Alloc|Allocate|CostNothing' ./wire/ ./metrics/ ./stages/ ./bip324/)
	@# wire has assembly on amd64 (the addrv2 fast path): test the pure-Go build too.
	$(GO) vet -tags purego ./wire/
	$(GO) test -tags purego -shuffle=on -count=1 ./wire/

# make bench: BENCH_COUNT samples of BENCH_TIME per benchmark (77 of them, and 15 of BenchmarkDecodeV2):
# about 5 minutes on 2 cores. The raw output stays in out/bench.txt for
# benchstat; the table comes from benchmarks/report.
BENCH_COUNT ?= 6
BENCH_TIME ?= 0.5s

bench: ## Run the benchmarks (BENCH_COUNT, BENCH_TIME) and print the table with the ratios to btcd and SHA-256d
	@mkdir -p out
	$(GO) test -run='^$$' -bench='^Benchmark(Decode|DecodeV2|Write)$$' -benchtime=$(BENCH_TIME) -count=$(BENCH_COUNT) -timeout=30m ./benchmarks/ | tee out/bench.txt
	@echo
	$(GO) run ./benchmarks/report out/bench.txt

memory-figures: build ## Peak RSS of the real binary against hostile loopback peers: a crawl of 200 honest + 200 block-streaming nodes, the node against one, a 3,999,999-byte ping
	$(GO) run ./internal/memfigures -btcpipe bin/btcpipe

fuzz: ## Run every Fuzz* target in wire/ and stages/ for FUZZTIME each (default 60s)
	@pkgs="$(patsubst %,./%/...,$(FUZZ_DIRS))"; \
	if [[ -z "$$pkgs" ]]; then echo "no wire/ or stages/ to fuzz"; exit 0; fi; \
	list=$$($(GO) test -list '^Fuzz' $$pkgs); \
	targets=$$(awk '/^Fuzz/ {names[n++] = $$1; next} /^ok / {for (i = 0; i < n; i++) print $$2 " " names[i]; n = 0}' <<<"$$list"); \
	if [[ -z "$$targets" ]]; then echo "no Fuzz targets in $$pkgs"; exit 0; fi; \
	while read -r pkg name; do \
		echo "== $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) "$$pkg" </dev/null; \
	done <<<"$$targets"

lint: ## Run go vet and the pinned staticcheck
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

clean: ## Remove bin/ and out/ (build products, bench output, screenshots)
	rm -rf bin/ out/

# The HTML report of a simulated crawl (report/), rendered in headless Chromium
# (Debian's chromium, installed with apt-get when missing) so a person can look
# at it. The page is laid out to fit the 1200x2400 window.
REPORT_HTML := $(CURDIR)/out/crawl-report.html
REPORT_PNG := $(CURDIR)/out/crawl-report.png

.PHONY: report-screenshot
report-screenshot: ## Crawl a simulated network, write out/crawl-report.html and screenshot it to out/crawl-report.png
	mkdir -p out
	BTCPIPE_REPORT_OUT=$(REPORT_HTML) $(GO) test -count=1 -run '^TestSimulatedCrawlReport$$' ./report/
	@if ! command -v chromium >/dev/null; then \
		sudo=; if [[ $$(id -u) != 0 ]]; then sudo=sudo; fi; \
		echo "installing chromium with apt-get"; \
		$$sudo apt-get update -q && $$sudo apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core; \
	fi
	@profile=$$(mktemp -d); trap 'rm -rf "$$profile"' EXIT; \
	rm -f $(REPORT_PNG); \
	chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
		--disable-sync --no-first-run --hide-scrollbars --user-data-dir="$$profile" \
		--screenshot=$(REPORT_PNG) --window-size=1200,2400 file://$(REPORT_HTML) >out/chromium.log 2>&1 \
		|| { cat out/chromium.log; exit 1; }; \
	test -s $(REPORT_PNG) || { cat out/chromium.log; echo "chromium wrote no screenshot"; exit 1; }
	@echo "wrote $(REPORT_PNG) from $(REPORT_HTML)"

# ---- Container image (issue 14) ---------------------------------------------
# `make image` builds the runtime image offline: a static binary built here
# (CGO_ENABLED=0, -trimpath) in a context holding only it, and Dockerfile.host
# (FROM scratch, numeric user 65532, no shell). The full multi-stage build
# stays in Dockerfile for machines with a registry (`docker build .`).
# Podman is preferred (installed with apt-get when neither it nor a working
# docker is there) and runs with runc, vfs storage, cgroupfs and a
# containers.conf without default ulimits, which is what works on these
# machines; `make test-image` runs internal/imagetest against the image with
# a btcd and (with BTCPIPE_BITCOIND) a Bitcoin Core on the host network.
IMAGE ?= localhost/btcpipe:dev
IMAGE_CTX := $(CURDIR)/out/image
IMAGE_CONTAINERS_CONF := $(CURDIR)/out/containers.conf
PODMAN_FLAGS := --runtime runc --storage-driver vfs --cgroup-manager cgroupfs
# Prints the engine's command line, or nothing.
ENGINE_SH := if command -v podman >/dev/null; then echo "podman $(PODMAN_FLAGS)"; \
	elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then echo docker; fi
# Run in a recipe: sets $$engine (installing podman if needed) and CONTAINERS_CONF.
ENGINE_SETUP := engine=$$($(ENGINE_SH)); \
	if [[ -z "$$engine" ]]; then \
		sudo=; if [[ $$(id -u) != 0 ]]; then sudo=sudo; fi; \
		echo "installing podman and runc with apt-get"; \
		$$sudo apt-get update -q && $$sudo apt-get install -y -q podman runc; \
		engine=$$($(ENGINE_SH)); \
	fi; \
	mkdir -p $(dir $(IMAGE_CONTAINERS_CONF)); \
	printf '[containers]\ndefault_ulimits = []\n' > $(IMAGE_CONTAINERS_CONF); \
	export CONTAINERS_CONF=$${CONTAINERS_CONF:-$(IMAGE_CONTAINERS_CONF)}

.PHONY: image test-image
image: ## Build the container image IMAGE (localhost/btcpipe:dev) offline (static host binary, FROM scratch) with podman or docker
	@mkdir -p $(IMAGE_CTX)/data
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags="-s -w" -o $(IMAGE_CTX)/btcpipe ./cmd/btcpipe
	@$(ENGINE_SETUP); \
	echo "$$engine build --format docker -f Dockerfile.host -t $(IMAGE) $(IMAGE_CTX)"; \
	if [[ $$engine == podman* ]]; then fmt="--format docker"; else fmt=; fi; \
	$$engine build $$fmt -f Dockerfile.host -t $(IMAGE) $(IMAGE_CTX)

test-image: image btcd ## Build the image and test it running: uid, env, JSON logs, handshake with btcd and Core, healthcheck, stop, read-only
	@$(ENGINE_SETUP); \
	BTCPIPE_IMAGE=$(IMAGE) BTCPIPE_CONTAINER_ENGINE="$$engine" \
		$(GO) test -tags image -count=1 -v -timeout=5m -run '^TestImage' ./internal/imagetest/

# ---- monitor (issue 16) ------------------------------------------------------
# The monitor's PostgreSQL tests start a throw-away server (internal/pgtest)
# with initdb and postgres from Debian's postgresql package, installed here
# with apt-get when missing. Under CI=true a missing PostgreSQL fails them.
PG_SERVER := $(firstword $(wildcard /usr/lib/postgresql/*/bin/postgres))

.PHONY: postgres bench-monitor
postgres: ## Install Debian's PostgreSQL server (initdb, postgres) for the monitor's tests, only if missing
	@if [[ -z "$(PG_SERVER)" ]] && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then \
		sudo=; if [[ $$(id -u) != 0 ]]; then sudo=sudo; fi; \
		echo "installing postgresql with apt-get"; \
		$$sudo apt-get update -q && $$sudo apt-get install -y -q --no-install-recommends postgresql; \
	fi

# 30 days of 10-minute snapshots of 20,000 nodes, generated, on SQLite and
# PostgreSQL: a few minutes (most of it generating); not part of make test.
bench-monitor: postgres ## Run the monitor's scale benchmark (SQLite and PostgreSQL) into out/bench-monitor.txt
	@mkdir -p out
	nice -n 10 $(GO) test -run='^$$' -bench='^BenchmarkScale$$' -benchtime=10x -timeout=60m ./monitor/ | tee out/bench-monitor.txt

# ---- crawl-bench (branch reach) ----------------------------------------------
# A crawl at default settings of a real-shaped simulated world: 60,000 addresses,
# 6,000 reachable nodes on IPv4, IPv6, Tor, I2P and CJDNS, the rest black holes,
# refused, stale and unroutable. Needs root: it builds two network namespaces and
# runs the world and the crawler inside one of them (ip netns exec). Not part of
# `make test`. BTCPIPE_WORLD_REACHABLE=600 runs a smaller world.
.PHONY: crawl-bench
crawl-bench: ## Benchmark a default crawl of 60,000 addresses (6,000 reachable) in a network namespace (root)
	nice -n 10 $(GO) test -count=1 -run='^$$' -bench='^BenchmarkCrawlWorld$$' -benchtime=1x -timeout=30m ./crawler/

# ---- dashboard (issue 17) ----------------------------------------------------
# The dashboard's browser tests (dashboard/browser*_test.go) drive Debian's
# chromium from Go with chromedp, headless, with a throw-away profile, on
# loopback only; `make chromium` installs it (and the fonts the pages are
# drawn with) with apt-get when missing. Under CI=true a missing chromium
# fails them; elsewhere they skip.
.PHONY: chromium dashboard-screenshots dashboard-docs
chromium: ## Install Debian's chromium and fonts-dejavu-core for the browser tests, only if missing
	@if ! command -v chromium >/dev/null || ! dpkg -s fonts-dejavu-core >/dev/null 2>&1; then \
		sudo=; if [[ $$(id -u) != 0 ]]; then sudo=sudo; fi; \
		echo "installing chromium with apt-get"; \
		$$sudo apt-get update -q && $$sudo apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core; \
	fi

# A week of generated hourly snapshots of 1,500 nodes, each page rendered in
# chromium at 1200 px wide: out/dashboard-*.png (full pages). With pngquant
# installed, the README's smaller copies in docs/ are refreshed from them by
# `make dashboard-docs`.
dashboard-screenshots: chromium ## Screenshot every dashboard page (generated data) to out/dashboard-*.png
	@mkdir -p out
	BTCPIPE_SCREENSHOTS=$(CURDIR)/out $(GO) test -count=1 -run '^TestScreenshots$$' -v ./dashboard/

DOCS_SHOTS := overview nodes node
dashboard-docs: dashboard-screenshots ## Refresh the README's dashboard screenshots in docs/ (first screens, through pngquant)
	@command -v pngquant >/dev/null || { echo "pngquant is missing: apt-get install pngquant"; exit 1; }
	@mkdir -p docs
	@for s in $(DOCS_SHOTS); do \
		pngquant --force --quality=70-90 --speed 1 --strip --output docs/dashboard-$$s.png out/dashboard-$$s-top.png; \
		echo "docs/dashboard-$$s.png: $$(du -k docs/dashboard-$$s.png | cut -f1) KB"; \
	done
