"""Value checks shared by the CLI's commands (``build``/``check`` and ``package``)."""

from __future__ import annotations

import argparse


def seconds(text: str) -> float:
    """``--import-timeout``'s value: a number of seconds from 1 to 900 (more than 0)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 900:
        raise argparse.ArgumentTypeError(f"{text!r}: use a number of seconds from 1 to 900")
    return value
