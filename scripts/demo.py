"""The main job, end to end on this machine (`make demo`)."""

from __future__ import annotations

import sys

from edgeres.cli import main
from edgeres.models import DEPTHS


def run() -> int:
    for depth in DEPTHS:
        code = main(["info", "--depth", str(depth)])
        if code:
            return code
        print()
    return main(["doctor"])


if __name__ == "__main__":
    sys.exit(run())
