# driftwarden: the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test chaos lint bench bench-scenarios kafka-jars alertmanager broker clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/driftwarden demo

kafka-jars: $(STAMP)
	$(BIN)/python -m tests.broker.kafka fetch

alertmanager: $(STAMP)
	$(BIN)/python -m tests.broker.alertmanager fetch

test: $(STAMP) kafka-jars alertmanager
	$(BIN)/python -m pytest -q

# the chaos run (minutes): hostile messages, broker outage, kill -9s, Slack/CI outage, with 1 instance and with 3
# in one group (state.backend: kafka); and the consumer group run (scale 1 -> 3 -> 1, kill -9, rolling restart); prints their counts
chaos: $(STAMP) kafka-jars
	$(BIN)/python -m pytest -m chaos tests/chaos tests/test_kafka_group.py -q -s

TYPECHECK := .cache/typecheck
lint: $(STAMP)
	$(BIN)/ruff check daemon detectors alerts tests bench
	@# mypy sees the sources under their installed names: driftwarden/<package> links to <package>/
	mkdir -p $(TYPECHECK)/driftwarden
	for p in daemon detectors alerts; do ln -sfn $(CURDIR)/$$p $(TYPECHECK)/driftwarden/$$p; done
	cd $(TYPECHECK) && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml

# every benchmark; each figure with its baseline of the same run and the ratio; rewrites the
# performance tables of README.md and bench/README.md (bench/run_all.py lists the benchmarks)
bench: $(STAMP) kafka-jars
	$(BIN)/python bench/run_all.py

# detection per fault scenario and false alarms on 2 no-drift streams of 1M (minutes; --quick: ~2 min)
bench-scenarios: $(STAMP)
	$(BIN)/python bench/scenarios.py --jobs 2

broker: kafka-jars
	$(BIN)/python -m tests.broker.kafka start

clean:
	rm -rf $(VENV) .cache var .pytest_cache .mypy_cache .ruff_cache .hypothesis
