"""Devices in a Ray cluster: joining one, connecting to one, listing its devices.

A device is a Ray worker node started by ``edgeres fleet join`` with labels from its
preflight (``edgeres/target``, ``edgeres/device``, ``edgeres/model``, ``edgeres/backend``,
``edgeres/backend-version``...) and one ``edgeres-device`` resource.

Security: an unauthenticated Ray cluster runs any code anyone who reaches it sends. Ray's
token authentication is switched on by the environment of every process of the cluster
(head, devices, the host that runs ``edgeres fleet``): ``RAY_AUTH_MODE=token`` and the same
token in ``RAY_AUTH_TOKEN``, a file named by ``RAY_AUTH_TOKEN_PATH``, or ``~/.ray/auth_token``
(``ray get-auth-token --generate`` writes one). edgeres passes that environment on unchanged.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any

from edgeres.errors import EdgeresError
from edgeres.fleet import require_ray
from edgeres.fleet.preflight import LABEL_PREFIX, SLOT, DeviceInfo, preflight


@dataclass
class Device:
    """A device as the cluster knows it: its node and the labels it joined with."""

    name: str
    target: str
    model: str
    backend: str
    backend_version: str
    ready: bool
    alive: bool
    node_id: str
    address: str
    labels: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def auth_mode() -> str:
    """"token" when this process talks to Ray with token authentication, else "disabled"."""
    return "token" if os.environ.get("RAY_AUTH_MODE", "").lower() == "token" else "disabled"


def auth_note() -> str | None:
    if auth_mode() == "token":
        return None
    return ("Ray token authentication is off (RAY_AUTH_MODE is not 'token'): anyone who reaches the cluster's "
            "ports can run code on it and on every device; see the README's fleet security notes")


def join_command(address: str, info: DeviceInfo, num_cpus: int | None = None) -> list[str]:
    """The ``ray start`` that joins this device: labels from its preflight, one device slot, in the foreground."""
    labels = ",".join(f"{k}={v}" for k, v in info.labels().items())
    argv = [sys.executable, "-m", "ray.scripts.scripts", "start", f"--address={address}", f"--labels={labels}",
            f'--resources={{"{SLOT}": 1}}', "--block"]
    if num_cpus is not None:
        argv.append(f"--num-cpus={num_cpus}")
    return argv


def join(address: str, target: str | None = None, name: str | None = None, dry_run: bool = False,
         log: Any = None) -> tuple[DeviceInfo, list[str], int]:
    """Preflight this device, then run ``ray start`` until it is stopped (Ctrl-C leaves the cluster).

    Refuses a device that cannot run its target. Returns (preflight, command, exit status).
    """
    require_ray()
    info = preflight(target, name)
    if info.problems:
        raise EdgeresError(f"this device cannot run target {info.target}: {'; '.join(info.problems)}")
    argv = join_command(address, info)
    if dry_run:
        return info, argv, 0
    if log:
        log(f"joining {address} as {info.name} ({info.target}, {info.model}, {info.backend} "
            f"{info.backends.get(info.backend)}); Ctrl-C leaves the cluster")
        note = auth_note()
        if note:
            log(f"warning: {note}")
    try:
        rc = subprocess.run(argv, check=False).returncode
    except KeyboardInterrupt:
        rc = 0
    return info, argv, rc


def connect(address: str) -> Any:
    """Connect this process to the cluster at ``address`` (HOST:PORT) as a driver."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    try:
        ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    except (ConnectionError, ValueError, RuntimeError, TimeoutError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EdgeresError(f"cannot connect to the Ray cluster at {address}: {first}. Is its head running "
                           "(ray start --head), and does this machine use the same token (RAY_AUTH_MODE, "
                           "RAY_AUTH_TOKEN)?") from None
    return ray


def devices(ray: Any) -> list[Device]:
    """Every node that joined as an edgeres device (alive or not), by name."""
    found = []
    for node in ray.nodes():
        labels = {k: v for k, v in (node.get("Labels") or {}).items()}
        mine = {k[len(LABEL_PREFIX):]: v for k, v in labels.items() if k.startswith(LABEL_PREFIX)}
        if "target" not in mine:
            continue
        found.append(Device(name=mine.get("device", node["NodeID"][:8]), target=mine["target"],
                            model=mine.get("model", "?"), backend=mine.get("backend", "?"),
                            backend_version=mine.get("backend-version", "?"), ready=mine.get("ready") != "no",
                            alive=bool(node.get("Alive")), node_id=node["NodeID"],
                            address=str(node.get("NodeManagerAddress")), labels=labels))
    return sorted(found, key=lambda d: (d.target, d.name, not d.alive))


def devices_table(found: list[Device]) -> str:
    from edgeres.table import format_table

    if not found:
        return "no edgeres devices have joined this cluster (on a device: edgeres fleet join --address HOST:PORT)"
    rows = [(d.name, d.target, d.model, f"{d.backend} {d.backend_version}", "alive" if d.alive else "dead",
             "yes" if d.ready else "no", d.address) for d in found]
    return format_table(["device", "target", "model", "backend", "node", "ready", "address"], rows)
