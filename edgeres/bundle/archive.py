"""Writing and safely extracting ``.tar.gz`` archives (bundles and device kits).

Extraction never trusts the archive: an absolute path, a ``..`` component, a link
that points outside the destination, or a device file / FIFO is refused before
anything is written, and Python's ``tarfile`` "data" filter is applied as well
where this Python has it.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from pathlib import Path

from edgeres.errors import EdgeresError
from edgeres.fileio import atomic_path


def write_tar_gz(src_dir: str | os.PathLike[str], out: str | os.PathLike[str], arcname: str | None = None) -> Path:
    """Pack ``src_dir`` as ``out`` (written atomically), its files under ``arcname/``.

    Entries are sorted and carry no user or group names, so the archive lists the
    same way everywhere. Links and special files in ``src_dir`` are refused.
    """
    src, out = Path(src_dir), Path(out)
    arcname = arcname or src.name
    with atomic_path(out) as tmp, tarfile.open(tmp, "w:gz", format=tarfile.PAX_FORMAT) as tar:

        def add(path: Path, name: str) -> None:
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                raise EdgeresError(f"cannot pack {path}: only plain files and folders go into an archive")
            info = tar.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if path.is_dir():
                tar.addfile(info)
                for child in sorted(path.iterdir()):
                    add(child, f"{name}/{child.name}")
            else:
                with open(path, "rb") as f:
                    tar.addfile(info, f)

        add(src, arcname)
    return out


def _unsafe_reason(member: tarfile.TarInfo, files: set[str]) -> str | None:
    """Why extracting ``member`` could write outside the destination or fail half-way, or None
    when it cannot. ``files``: the regular files before it in the archive (a hard link's
    target must be one of them; the data filter does not check that)."""
    name = member.name
    if "\x00" in name:
        return "has a NUL byte in its name"
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "is an absolute path"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "contains '..'"
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        return "is a device file or FIFO"
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        return "is not a plain file, folder or link"
    if member.issym() or member.islnk():
        link = member.linkname
        if not link or link.startswith(("/", "\\")) or (len(link) > 1 and link[1] == ":"):
            return f"is a link to an absolute path ({link!r})"
        # A link target that never climbs ('..') can only lead further down from where it
        # sits, however links chain, so it stays inside. Checking lexically instead would
        # miss chains such as b -> '.', c -> 'b/b/..'.
        if ".." in link.replace("\\", "/").split("/"):
            return f"is a link that points outside the archive or climbs with '..' ({link!r})"
        if member.islnk() and os.path.normpath(link) not in files:
            return f"is a hard link to {link!r}, which is not a file earlier in the archive"
    return None


def safe_extract(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Extract a ``.tar.gz`` into ``dest`` (created), refusing anything unsafe. Returns ``dest``."""
    archive, dest = Path(archive), Path(dest)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            files: set[str] = set()
            for member in members:
                reason = _unsafe_reason(member, files)
                if reason:
                    raise EdgeresError(f"refusing to extract {archive}: entry '{member.name}' {reason}")
                if member.isfile() or member.islnk():
                    files.add(os.path.normpath(member.name))
            dest.mkdir(parents=True, exist_ok=True)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover - Pythons before 3.10.12 / 3.11.4: the checks above are the guard
                tar.extractall(dest, members=members)
    except getattr(tarfile, "FilterError", ()) as exc:  # the data filter's own refusal
        raise EdgeresError(f"refusing to extract {archive}: {exc}") from None
    except tarfile.TarError as exc:
        raise EdgeresError(f"{archive} is not a readable .tar.gz archive ({exc}); is it truncated?") from None
    except EOFError:
        raise EdgeresError(f"{archive} is truncated: copy it again") from None
    except (OSError, zlib.error) as exc:  # a damaged gzip stream, or the disk is full
        raise EdgeresError(f"cannot extract {archive}: {exc}") from None
    return dest
