# MAMOCHI event platform: the commands people run.
#
#   make demo    the main job: start the local stack and run the demo scenario
#   make test    every test, on a fresh real stack that is stopped afterwards
#   make run     start the stack and every service (API on 127.0.0.1:8080) until Ctrl-C
#   make bench   start the stack and run the full benchmark into docs/report
#   make up / down / status    the local stack by hand
#   make up-observed           the stack plus Prometheus (deploy/prometheus) on 127.0.0.1:9090
#
# Build output goes outside the clone so that clones share it.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/mamochi/target
STACK := deploy/local/stack
MAMOCHI := $(CARGO_TARGET_DIR)/debug/mamochi

.PHONY: prereqs build up up-observed down status run demo bench test wipe

prereqs:
	@deploy/local/prereqs

build: prereqs
	cargo build -p mamochi

up: build
	$(STACK) up

up-observed: build
	$(STACK) up --with-prometheus

down:
	$(STACK) down

status:
	$(STACK) status

wipe:
	$(STACK) wipe

run: up
	eval "$$($(STACK) env)" && exec $(MAMOCHI) run all

demo: up
	eval "$$($(STACK) env)" && MAMOCHI__LOG__FILTER=$${MAMOCHI__LOG__FILTER:-warn} $(MAMOCHI) demo $(DEMO_ARGS)

# The full benchmark (several minutes) on an optimised build, since a debug
# build measures the compiler's defaults more than the platform;
# BENCH_PROFILE=debug reuses the debug binary. BENCH_ARGS passes flags, e.g.
# BENCH_ARGS="--rates 500,1000 --stage-secs 20" (see `mamochi bench --help`).
BENCH_PROFILE ?= release
bench: up
	cargo build $(if $(filter release,$(BENCH_PROFILE)),--release) -p mamochi
	eval "$$($(STACK) env)" && $(CARGO_TARGET_DIR)/$(BENCH_PROFILE)/mamochi bench --out docs/report $(BENCH_ARGS)

test:
	deploy/local/run-tests
