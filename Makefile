# driftwarden: the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test chaos lint bench kafka-jars broker clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/driftwarden demo

kafka-jars: $(STAMP)
	$(BIN)/python -m tests.broker.kafka fetch

test: $(STAMP) kafka-jars
	$(BIN)/python -m pytest -q

# the chaos run (minutes): hostile messages, broker outage, kill -9s, Slack/CI outage; prints its counts
chaos: $(STAMP) kafka-jars
	$(BIN)/python -m pytest -m chaos tests/chaos -q -s

lint: $(STAMP)
	$(BIN)/ruff check daemon detectors alerts tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/detectors.py
	$(BIN)/python bench/kafka_run.py

broker: kafka-jars
	$(BIN)/python -m tests.broker.kafka start

clean:
	rm -rf $(VENV) .cache var .pytest_cache .mypy_cache .ruff_cache .hypothesis
