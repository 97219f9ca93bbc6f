"""``edgeres package`` and ``edgeres report``: bundles and build reports."""

from __future__ import annotations

import argparse

from edgeres.cli.common import emit

# --- package ----------------------------------------------------------------------------------

def add_package(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("package", help="package an artifact into a bundle (folder + .tar.gz) for a target")
    p.add_argument("artifact", help="artifact file with its metadata beside it (model.onnx, model.xml, model.engine)")
    p.add_argument("--target", default=None, help="target name or alias (default: the one it was built for)")
    p.add_argument("--out", required=True, help="bundle folder to write (DIR and DIR.tar.gz)")
    p.add_argument("--labels", default=None, help="text file with one class label per line "
                   "(default: the class names recorded in the artifact, if any)")
    p.add_argument("--targets-dir", default=None, help="folder with your own target TOML files")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(handler=_run_package)


def _run_package(args: argparse.Namespace) -> int:
    from edgeres.bundle import load_bundle, package_artifact, tarball_of

    out = package_artifact(args.artifact, args.out, target=args.target, labels_file=args.labels,
                           targets_dir=args.targets_dir)
    with load_bundle(out, require_backend=False) as bundle:
        m = bundle.manifest
    size = sum(e["bytes"] for e in m["files"].values())
    text = (f"bundle for {m['target']['name']} ({m['backend']['name']} {m['backend']['version'] or ''}, "
            f"{m['precision']}): {out}  ({size / 1e6:.1f} MB, {len(m['files']) + 1} files)\n"
            f"tarball: {tarball_of(out)}\n"
            f"run it:  python -m edgeres.run {tarball_of(out)} IMAGE.jpg")
    emit(args, {"bundle": str(out), "tarball": str(tarball_of(out)), "manifest": m}, text)
    return 0


# --- report -----------------------------------------------------------------------------------

def add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="merge reports of several builds (and device kits) into one comparison")
    p.add_argument("reports", nargs="+", metavar="DIR",
                   help="build output folders (report.json) or kit folders (kit-report.json), or the JSON files")
    p.add_argument("--out", default=None, help="write the merged report.json, report.md and accuracy_latency.png here")
    p.add_argument("--title", default=None, help="title of the merged report")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edgeres.report import PLOT_PNG, REPORT_MD, merge_reports, write_report
    from edgeres.report.files import check_report_out

    if args.out:
        check_report_out(Path(args.out))
    report = merge_reports(args.reports, title=args.title)
    text = f"{report.title}\n{report.summary()}"
    if args.out:
        write_report(report, args.out)
        written = [REPORT_MD, "report.json"] + ([PLOT_PNG] if not any(PLOT_PNG in n for n in report.notes) else [])
        text += f"\nwritten to {args.out}: {', '.join(written)}"
    for note in report.notes:
        text += f"\nnote: {note}"
    emit(args, report.to_dict(), text)
    return 0
