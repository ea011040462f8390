# The chalicepack GitHub Action. The runner builds this (or release.yml's prebuilt copy of it),
# mounts the workspace at /github/workspace and sets the working directory itself, so there is
# no WORKDIR and no USER: the action runs as root and gives what it writes back to the
# workspace's owner.
#
# BASE_IMAGE: any Debian-like image with python3 (3.11+) and its venv module; a system pip is
# never used, so an "externally managed" Debian python3 works as well as the official image.
ARG BASE_IMAGE=python:3.13.7-slim-bookworm
FROM ${BASE_IMAGE}

# Logs reach the runner as they happen, interleaved in order with workflow commands.
ENV PYTHONUNBUFFERED=1

COPY pyproject.toml README.md /opt/chalicepack/source/
COPY src /opt/chalicepack/source/src
# One layer: the source tree is only needed to install from, so it is gone from the image.
RUN python3 -m venv /opt/chalicepack/venv \
    && /opt/chalicepack/venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check \
        /opt/chalicepack/source \
    && rm -rf /opt/chalicepack/source
COPY entrypoint.py /opt/chalicepack/entrypoint.py

ENTRYPOINT ["/opt/chalicepack/venv/bin/python", "/opt/chalicepack/entrypoint.py"]
