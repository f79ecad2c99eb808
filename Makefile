# MAMOCHI event platform: the commands people run.
#
#   make demo    the main job: start the local stack and run the demo scenario
#   make test    every test, on a fresh real stack that is stopped afterwards
#   make up / down / status    the local stack by hand
#
# Build output goes outside the clone so that clones share it.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/mamochi/target
STACK := deploy/local/stack
MAMOCHI := $(CARGO_TARGET_DIR)/debug/mamochi

.PHONY: prereqs build up down status demo test wipe

prereqs:
	@deploy/local/prereqs

build: prereqs
	cargo build -p mamochi

up: build
	$(STACK) up

down:
	$(STACK) down

status:
	$(STACK) status

wipe:
	$(STACK) wipe

demo: up
	eval "$$($(STACK) env)" && $(MAMOCHI) demo

test:
	deploy/local/run-tests
