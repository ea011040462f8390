"""Child process: auditwheel's verdict on one wheel for one manylinux policy, and its repair.

Run as ``python -m chalicepack.deps._audit_child WHEEL POLICY ARCH OUT_DIR``; prints one JSON
object: ``external_libs`` (soname -> path on this machine, or null when not found),
``problems`` (what keeps the wheel out of the policy other than its libraries) and
``repaired`` (the repaired wheel's path, when the wheel fits once its libraries are grafted).

auditwheel is used as a library because its command line offers only the policies of this
machine's architecture (``repair --plat`` choices), and an arm64 target is built on x86_64.
It runs in a child process because its ``patchelf`` is looked up on PATH, which the parent
sets for it, and so that nothing of auditwheel (logging, imports) stays in the build's process.
"""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path
from typing import Any


def audit(wheel: Path, policy_name: str, arch: str, out_dir: Path) -> dict[str, Any]:
    from auditwheel.architecture import Architecture
    from auditwheel.libc import Libc
    from auditwheel.patcher import ElfPatcher
    from auditwheel.repair import repair_wheel
    from auditwheel.wheel_abi import analyze_wheel_abi

    info = analyze_wheel_abi(
        Libc.GLIBC,
        Architecture(arch),
        wheel,
        frozenset(),
        disable_isa_ext_check=False,
        allow_graft=True,
        requested_policy_base_name=policy_name.removesuffix(f"_{arch}"),
    )
    policy = info.policies.get_policy_by_name(policy_name)
    libs = info.external_refs[policy.name].libs
    # The same tests, in the same order, as `auditwheel repair --plat POLICY`.
    problems = []
    if policy > info.sym_policy:
        problems.append("symbols")
    if policy > info.ucs_policy:
        problems.append("ucs2")
    if policy > info.blacklist_policy:
        problems.append("blacklisted symbols")
    if policy > info.machine_policy:
        problems.append("instruction set extensions")
    answer: dict[str, Any] = {
        "external_libs": {soname: str(path) if path else None for soname, path in libs.items()},
        "problems": problems,
        "versioned_symbols": {name: sorted(v) for name, v in info.versioned_symbols.items()},
        "repaired": None,
    }
    if problems or None in libs.values():
        return answer
    out_dir.mkdir(parents=True, exist_ok=True)
    repaired = repair_wheel(
        info,
        wheel,
        abis=[policy.name, *policy.aliases],
        lib_sdir=".libs",
        out_dir=out_dir,
        update_tags=True,
        patcher=ElfPatcher.get_patcher("patchelf", policy.name),
        strip=False,
        zip_compression_level=zlib.Z_DEFAULT_COMPRESSION,
    )
    answer["repaired"] = str(repaired) if repaired else None
    return answer


if __name__ == "__main__":
    wheel, policy_name, arch, out_dir = sys.argv[1:5]
    print(json.dumps(audit(Path(wheel), policy_name, arch, Path(out_dir))))
