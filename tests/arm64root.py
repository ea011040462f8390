"""An arm64 Debian root in which tests run an aarch64 CPython on this x86_64 machine.

The kernel hands aarch64 executables to Debian's qemu-user-static through binfmt_misc, so
``chroot ROOT /usr/bin/python3`` runs bookworm's arm64 python3.11, the CPython of the python3.11
arm64 Lambda runtime. The root is made by debootstrap (Debian's ``debootstrap``, about 2 min)
and cached under build/arm64-root/, keyed by its recipe; it is built in a temporary folder and
renamed into place, so an interrupted run never leaves a cache that looks complete.

Needs root (mount, chroot, debootstrap); ``make test-arm64`` installs the Debian packages.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "build" / "arm64-root"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3",)
BINFMT = Path("/proc/sys/fs/binfmt_misc")
# qemu-user-static's own registration line. Its "F" flag makes the kernel open the emulator
# when it is registered, so it also runs inside a chroot that has no qemu of its own.
QEMU_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
# What a process inside the root sees: nothing of this machine's environment (a venv's
# PYTHONHOME or PYTHONPATH would point the arm64 python at x86_64 files).
CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}


def run(
    command: Sequence[str | Path], timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a setup command; a failure fails the test with the command's own output."""
    if shutil.which(command[0]) is None:
        raise AssertionError(f"{command[0]} is not installed: run `make test-arm64` (root)")
    completed = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=timeout
    )
    if completed.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, command))} exited {completed.returncode}:\n"
            f"{completed.stdout}\n{completed.stderr}"
        )
    return completed


def register_qemu_aarch64() -> None:
    """Mount binfmt_misc and register qemu-aarch64, as systemd-binfmt would on a booted host."""
    if not QEMU_CONF.is_file():
        raise AssertionError(f"{QEMU_CONF} is missing: apt-get install qemu-user-static")
    if not (BINFMT / "register").exists():
        run(["mount", "-t", "binfmt_misc", "binfmt_misc", BINFMT])
    entry = BINFMT / "qemu-aarch64"
    if not entry.exists():
        # FileExistsError: another process registered it in the meantime.
        with suppress(FileExistsError):
            (BINFMT / "register").write_text(QEMU_CONF.read_text().strip())
    if not entry.read_text().startswith("enabled"):
        raise AssertionError(f"{entry} is registered but disabled: echo 1 > {entry}")


@dataclass(frozen=True)
class Arm64Root:
    path: Path

    def python(
        self, code: str, share: Path | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python3 -c code`` in the root under qemu. ``share``, when given, is copied into
        the root for this call only and put first on ``sys.path``; its path inside the root is
        in the environment variable SHARED. The process is returned whatever its exit code."""
        env = dict(CHROOT_ENV)
        with self._shared(share) as inside:
            if inside is not None:
                env |= {"PYTHONPATH": inside, "SHARED": inside}
            return subprocess.run(
                ["chroot", str(self.path), "/usr/bin/python3", "-c", code],
                capture_output=True,
                text=True,
                env=env,
                timeout=timeout,
                check=False,
            )

    @contextmanager
    def _shared(self, folder: Path | None) -> Iterator[str | None]:
        # A copy rather than a bind mount: nothing to unmount, so an interrupted test cannot
        # leave this machine's files mounted inside the cached root.
        if folder is None:
            yield None
            return
        inside = f"/tmp/chalicepack-{uuid.uuid4().hex}"
        copy = self.path / inside.lstrip("/")
        shutil.copytree(folder, copy, symlinks=True)
        try:
            yield inside
        finally:
            shutil.rmtree(copy)


def recipe_key() -> str:
    recipe = f"{SUITE} arm64 minbase {MIRROR} {' '.join(PACKAGES)}"
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def cached_arm64_root() -> Arm64Root:
    """The cached root, made first when missing; qemu registered so it can run."""
    register_qemu_aarch64()
    CACHE.mkdir(parents=True, exist_ok=True)
    final = CACHE / f"{SUITE}-arm64-{recipe_key()}"
    # One maker at a time: the lead's and helpers' runs share this machine's build/ folder.
    with (CACHE / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not final.is_dir():
            _debootstrap(final)
    return Arm64Root(final)


def _debootstrap(final: Path) -> None:
    partial = final.with_name(final.name + ".partial")
    _remove_partial(partial)
    run(
        [
            "debootstrap",
            "--arch=arm64",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            partial,
            MIRROR,
        ],
        timeout=1200,
    )
    os.rename(partial, final)


def _remove_partial(partial: Path) -> None:
    """What an interrupted debootstrap left, unmounting first what it may have mounted (/proc,
    /sys, or /dev in a container) so that removing the folder cannot reach this machine's."""
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for mount in sorted(mounts, reverse=True):
        if mount == str(partial) or mount.startswith(f"{partial}/"):
            run(["umount", "--lazy", mount])
    shutil.rmtree(partial, ignore_errors=True)
