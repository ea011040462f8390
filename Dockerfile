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

# zig (the ziglang wheel, the cross compiler of source builds) ships libc headers and sources
# for every OS it targets: Windows/mingw, macOS, the BSDs, WASI, musl, 163 MB of the 234 MB of
# its lib/. chalicepack builds only for Lambda, which is linux-gnu on x86_64 ("x86" headers)
# and aarch64: that is all that stays, with the glibc stubs zig links against, clang's and
# libc++'s headers and zig's std; the docs, debugger scripts and the thread sanitizer go too.
# tests/test_container.py builds a C extension for arm64 with the zig that is left.
WORKDIR /opt/chalicepack/venv
RUN zig_lib="$(echo lib/python3*/site-packages/ziglang/lib)" \
    && test -x "$zig_lib/../zig" \
    && rm -r "$zig_lib/docs" "$zig_lib/lldb" "$zig_lib/libtsan" \
    && rm -r "$zig_lib/libc/darwin" "$zig_lib/libc/freebsd" "$zig_lib/libc/mingw" \
        "$zig_lib/libc/musl" "$zig_lib/libc/netbsd" "$zig_lib/libc/openbsd" "$zig_lib/libc/wasi" \
    && find "$zig_lib/libc/include" -mindepth 1 -maxdepth 1 -type d \
        ! -name generic-glibc ! -name any-linux-any ! -name x86-linux-any ! -name x86-linux-gnu \
        ! -name aarch64-linux-any ! -name aarch64-linux-gnu -exec rm -r {} + \
    && test -f "$zig_lib/libc/include/generic-glibc/stdio.h"

FROM ${BASE_IMAGE}
# Logs reach the runner as they happen, interleaved in order with workflow commands.
ENV PYTHONUNBUFFERED=1
COPY --from=build /opt/chalicepack/venv /opt/chalicepack/venv
COPY entrypoint.py /opt/chalicepack/entrypoint.py
# The venv's .pyc were compiled by pip in the build stage; the official python images ship
# their standard library without any, so every step (a new container each time) would compile
# what it imports again, ~0.1 s. Importing the Action and its engine once here leaves the .pyc
# of exactly the standard modules they use (a few MB, not the whole library's).
RUN /opt/chalicepack/venv/bin/python -c "import chalicepack.action.run, \
chalicepack.deploy.templates, chalicepack.deploy.publish, pip._internal.cli.main"

ENTRYPOINT ["/opt/chalicepack/venv/bin/python", "/opt/chalicepack/entrypoint.py"]
