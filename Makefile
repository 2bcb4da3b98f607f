# The README's two commands (`make demo`, `make test`) are the whole set-up on a fresh machine:
# each creates .venv when missing and installs what it needs.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.cosmos-hf-installed
ARCH := $(shell uname -m)
# torch wheels that pip resolves from this machine's disk; aarch64 gets a CPU build.
ifeq ($(ARCH),aarch64)
TORCH := torch==2.9.1 torchvision==0.24.1
else
TORCH := torch==2.14.1 torchvision==0.29.1
endif

.PHONY: install demo test bench clean space space-screenshot browser-deps

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m cosmos_hf.demo --out outputs/demo

test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadfile

bench: $(STAMP)
	$(PY) bench/run_all.py

# The Gradio Space on http://127.0.0.1:7860 (the bundled nano pipelines; gradio comes with the dev extra).
space: $(STAMP)
	$(PY) spaces/cosmos-nano/app.py

# docs/images/space.png: the browser test's screenshot, at the Space's default 35 sampling steps.
space-screenshot: $(STAMP) browser-deps
	COSMOS_HF_SPACE_SCREENSHOT=$(CURDIR)/docs/images/space.png COSMOS_HF_SPACE_STEPS=35 OMP_NUM_THREADS=1 \
		$(PY) -m pytest -q -p no:cacheprovider tests/test_space_app.py -k playable_video

# Debian's chromium for the Space's browser test (Playwright drives it; no browser is downloaded). Idempotent;
# without root it only says that the browser test will be skipped.
browser-deps:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (apt) for the Space's browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "note: /usr/bin/chromium is missing and apt-get needs root: the Space's browser test will be skipped"; fi

clean:
	rm -rf outputs .pytest_cache
