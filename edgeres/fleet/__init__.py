"""A fleet of devices over Ray: build once on the host, measure on every device, merge one report.

Each device joins a Ray cluster (``edgeres fleet join``) as a worker node labelled with its
edgeres target, device model and backend versions, and one ``edgeres-device`` resource so two
measurements never share it. ``edgeres fleet run`` builds once per target on the host, Ray
carries the bundle or kit to each matching device, the device verifies it and measures, and
the host merges one report.

- ``preflight``: what a device is and whether it can run its target (no Ray, no torch)
- ``cluster``: joining, connecting, listing the devices (Ray)
- ``payload``: what travels to a device, packed on the host and checked on arrival
- ``worker``: the task a device runs
- ``executor``: one task per device, timeouts, one retry, Ctrl-C
- ``merge``: the merged report, with device states kept apart

The command line is ``edgeres.cli.fleet``.

Ray is an optional extra: ``pip install 'edgeres[fleet]'``.
"""

from __future__ import annotations

from types import ModuleType

from edgeres.errors import EdgeresError

INSTALL = "pip install 'edgeres[fleet]'"


def require_ray() -> ModuleType:
    """The ``ray`` module, or the one-line error that says what to install."""
    try:
        import ray
    except ImportError:
        raise EdgeresError(f"edgeres fleet needs Ray, which is not installed here: {INSTALL} "
                           "(on the host and on every device)") from None
    return ray
