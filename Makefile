# Two entry points: `make book` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export OMP_NUM_THREADS ?= 2
export MKL_NUM_THREADS ?= 2
export PYTHONHASHSEED := 0

.PHONY: book test setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going

# records: every stored run record retrains its first epoch; one, chosen by the commit, retrains in full
test: $(STAMP)
	$(BIN)/python -m pytest tests
	$(BIN)/python -m vaelib records verify notebooks/records
	$(BIN)/python -m vaelib records reproduce notebooks/records --max-wall 300 --choose $$(git rev-parse HEAD 2>/dev/null || echo 0)
	$(BIN)/python -m pytest --nbval notebooks -p no:cacheprovider

clean:
	rm -rf _build .pytest_cache
