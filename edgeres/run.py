"""Classify images with a bundle, on the device, without torch.

    python -m edgeres.run BUNDLE image.jpg [more.jpg ...] [--topk 5] [--target T] [--json]

BUNDLE is a bundle folder or its ``.tar.gz``. The bundle's own backend runs its
artifact, with the preprocessing recorded in its manifest; checksums are verified
first, and a bundle for another target (``--target``) is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from edgeres import limits
from edgeres.argtypes import Parser, integer
from edgeres.guard import run_guarded


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m edgeres.run",
                                description="Classify images with an edgeres bundle (no torch needed).")
    p.add_argument("bundle", help="bundle folder or its .tar.gz")
    p.add_argument("images", nargs="+", help="image files (JPEG, PNG, ...)")
    p.add_argument("--topk", type=integer(limits.TOPK), default=5,
                   help="how many classes to print per image (default 5)")
    p.add_argument("--target", default=None,
                   help="refuse the bundle unless it was built for this target (name or alias)")
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


def format_results(results: list, bundle_desc: str) -> str:
    lines = [bundle_desc]
    for r in results:
        lines.append(r.image)
        width = max(len(p.label) for p in r.top)
        lines += [f"  {rank:>2}. {p.label:<{width}}  {p.probability:7.2%}" for rank, p in enumerate(r.top, 1)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a value the command line rules out (exit code 2)
        return int(exc.code or 0)
    return run_guarded("edgeres run", lambda: _classify(args))


def _classify(args: argparse.Namespace) -> int:
    from edgeres.bundle import load_bundle

    with load_bundle(args.bundle, target=args.target) as bundle:
        results = bundle.classify(args.images, topk=args.topk)
        model = bundle.manifest.get("model", {})
        desc = (f"{bundle.source.name}: ResNet-{model.get('depth', '?')}, {bundle.target} / {bundle.backend} "
                f"{bundle.manifest['backend'].get('version') or ''} / {bundle.precision}").replace("  ", " ")
        if args.json:
            print(json.dumps({"bundle": str(bundle.source), "target": bundle.target, "backend": bundle.backend,
                              "precision": bundle.precision, "results": [r.to_dict() for r in results]},
                             indent=2))
        else:
            print(format_results(results, desc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
