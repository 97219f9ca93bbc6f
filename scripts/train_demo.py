"""Train the demo model: an edgeres ResNet on scikit-learn's real handwritten digits.

    python scripts/train_demo.py [--depth 18] [--epochs N] [--seed 0] --out DIR

Writes DIR/model.pth (torchvision-layout state_dict) and DIR/model.json (depth, num_classes,
input_size, preprocess, classes, val_top1, train_seconds, ...). Deterministic. The digits are
written as PNG files under the edgeres cache on first use and read back through
``edgeres.data.open_set``, exactly as a user's images are. ``edgeres.data.ensure_demo_model``
trains (or reuses) the same model in the cache.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    from edgeres.data.train import DEFAULT_BATCH, DEFAULT_THREADS, default_recipe
    from edgeres.errors import EdgeresError

    parser = argparse.ArgumentParser(prog="train_demo.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=18, help="ResNet depth: 18, 34, 50, 101 or 152 (default 18)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the depth's recipe (6; 5 for ResNet-50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    parser.add_argument("--lr", type=float, default=None,
                        help="peak learning rate, one-cycle (default: the depth's recipe, 0.1; 0.05 for ResNet-50)")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help=f"torch CPU threads, fixed for determinism (default {DEFAULT_THREADS})")
    parser.add_argument("--train-size", type=int, default=None, help="use only this many training images")
    parser.add_argument("--out", required=True, help="output folder for model.pth and model.json")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    parser.add_argument("--json", action="store_true", help="print model.json to stdout")
    args = parser.parse_args(argv)
    epochs, lr = default_recipe(args.depth)
    args.epochs = epochs if args.epochs is None else args.epochs
    args.lr = lr if args.lr is None else args.lr
    try:
        from edgeres.data import open_set
        from edgeres.data.train import train_demo_model

        train_set = open_set("demo:digits-train", size=args.train_size, require_labels=True)
        info = train_demo_model(args.out, depth=args.depth, epochs=args.epochs, seed=args.seed,
                                batch_size=args.batch_size, lr=args.lr, threads=args.threads,
                                train_set=train_set, progress=not args.quiet)
    except EdgeresError as exc:
        print(f"train_demo.py: error: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"ResNet-{info['depth']} on {info['train_set']['size']} digits: val top-1 "
              f"{100 * info['val_top1']:.2f}% ({info['val_set']['size']} images), trained in "
              f"{info['train_seconds']:.1f}s -> {args.out}/model.pth")
    return 0


if __name__ == "__main__":
    sys.exit(main())
