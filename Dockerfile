# The chalicepack GitHub Action. The runner builds this (or release.yml's prebuilt copy of it),
# mounts the workspace at /github/workspace and sets the working directory itself, so there is
# no WORKDIR and no USER: the action runs as root and gives what it writes back to the
# workspace's owner.
#
# BASE_IMAGE: any Debian-like image with python3 (3.11+) and its venv module; a system pip is
# never used, so an "externally managed" Debian python3 works as well as the official image.
ARG BASE_IMAGE=python:3.13.7-slim-bookworm

# Build stage: chalicepack's dependencies from the lock, every file checked against its hash
# (image/requirements.txt, `make image-lock`), and chalicepack's own wheel built with the
# locked setuptools. Only the virtualenv goes on to the image.
FROM ${BASE_IMAGE} AS build
COPY image/requirements.txt image/build-requirements.txt /opt/chalicepack/lock/
COPY pyproject.toml README.md /opt/chalicepack/source/
COPY src /opt/chalicepack/source/src
# --no-deps: the lock is the whole set. Python 3.11's venv seeds setuptools, which nothing
# needs at run time (chalice declares it for the packager chalicepack replaces): it goes.
RUN python3 -m venv /opt/chalicepack/venv \
    && /opt/chalicepack/venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check \
        --require-hashes --no-deps --only-binary :all: -r /opt/chalicepack/lock/requirements.txt \
    && python3 -m venv /opt/chalicepack/build-tools \
    && /opt/chalicepack/build-tools/bin/python -m pip install --no-cache-dir \
        --disable-pip-version-check --require-hashes --no-deps --only-binary :all: \
        -r /opt/chalicepack/lock/build-requirements.txt \
    && /opt/chalicepack/build-tools/bin/python -m pip wheel --no-cache-dir \
        --disable-pip-version-check --no-deps --no-build-isolation \
        --wheel-dir /opt/chalicepack/wheel /opt/chalicepack/source \
    && /opt/chalicepack/venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check \
        --no-deps /opt/chalicepack/wheel/chalicepack-*.whl \
    && /opt/chalicepack/venv/bin/python -m pip uninstall --yes --disable-pip-version-check \
        setuptools

FROM ${BASE_IMAGE}
# Logs reach the runner as they happen, interleaved in order with workflow commands.
ENV PYTHONUNBUFFERED=1
COPY --from=build /opt/chalicepack/venv /opt/chalicepack/venv
COPY entrypoint.py /opt/chalicepack/entrypoint.py

ENTRYPOINT ["/opt/chalicepack/venv/bin/python", "/opt/chalicepack/entrypoint.py"]
