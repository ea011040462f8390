"""Run pip with environment markers evaluated for the Lambda target instead of this host.

pip's ``--python-version`` and ``--platform`` choose wheels for the target, but pip still
evaluates markers (``python_version < "3.12"``, ``platform_machine == "aarch64"``) against
the interpreter running it, for requirements.txt lines and for every ``Requires-Dist`` alike.
Run as ``python -m chalicepack.deps._child ARGS``, this replaces the marker environment pip's
vendored ``packaging`` computes with the target's (``CHALICEPACK_MARKER_ENVIRONMENT``, JSON),
then runs pip unchanged. Subprocesses pip starts (build backends, build-dependency installs)
do not inherit it: they run on this host, and their markers are this host's.
"""

from __future__ import annotations

import json
import os
import runpy
import sys

ENVIRONMENT_VARIABLE = "CHALICEPACK_MARKER_ENVIRONMENT"


def main() -> None:
    target = json.loads(os.environ.pop(ENVIRONMENT_VARIABLE))
    from pip._vendor.packaging import markers

    host_environment = markers.default_environment

    def target_environment() -> dict[str, object]:
        environment = dict(host_environment())
        environment.update(target)
        return environment

    markers.default_environment = target_environment  # type: ignore[assignment]
    sys.argv = ["pip", *sys.argv[1:]]
    runpy.run_module("pip", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
