"""The one exception type for mistakes a user can make, and the exit codes of ``edgeres``.

The CLI prints an ``EdgeresError`` as a single line and exits non-zero; anything
else is a bug and keeps its traceback. The exit codes are a contract with scripts and CI
(the README's table lists them): never reuse one for another meaning.
"""

OK = 0
ERROR = 1             # something the user can fix: a missing file, a set that does not fit the model...
USAGE = 2             # a value the command line rules out (argparse uses 2 too)
OVER_BUDGET = 3       # validate --max-drop / build --fail-over-budget: a precision lost more than allowed
DEVICE_RUNS_FAILED = 4  # fleet run: the report was merged, but some device runs failed, hung or died
BUSY = 5              # bench --fail-busy: the figure kept was still timed on a busy machine
INTERRUPTED = 130     # Ctrl-C (128 + SIGINT, as shells report it)


class EdgeresError(Exception):
    """Something the user can fix: the message says what was wrong and how to fix it."""

    exit_code = ERROR


class UsageError(EdgeresError):
    """A bad command-line value (depth, class count, input size...): exit code 2."""

    exit_code = USAGE


def os_error_message(exc: OSError) -> str:
    """What the filesystem refused, said with the path it refused and what to do about it,
    instead of bare errno text such as "File exists" or "File too large"."""
    import errno
    import os

    path = exc.filename or ""
    where = f"{path}: " if path else ""
    code = exc.errno
    if code == errno.EEXIST:
        kind = "a file, not a folder" if os.path.isfile(path) else "in the way"
        return f"{path} exists and is {kind}: choose another path (--out), or move it away yourself"
    if code == errno.ENOTDIR:
        return f"{where}a part of this path is a file where a folder is needed: choose another path"
    if code == errno.EISDIR:
        return f"{path} is a folder where a file is needed: name the file inside it, or choose another path"
    if code == errno.ENOENT:
        return f"{path or 'a file'} does not exist: check the path"
    if code == errno.EFBIG:
        return (f"{where}file too large: the file outgrew the file-size limit of this process (ulimit -f) or of "
                "its filesystem; raise the limit or write to another filesystem")
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"{where}no space left (disk or quota full): free some space, or choose another --out"
    if code in (errno.EACCES, errno.EPERM):
        return (f"{where}not permitted ({exc.strerror}): check the owner, the permissions and any immutable "
                "or append-only attribute of the path and its folder, or choose another path")
    if code == errno.EROFS:
        return f"{where}the filesystem is read-only: choose a writable path"
    if code == errno.ENAMETOOLONG:
        return f"{where}the name is too long for the filesystem: choose a shorter path"
    return f"{where}{exc.strerror or exc}"
