"""Atomic file output: nothing placer writes is ever left half-written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def check_output_file(path: str | os.PathLike[str], option: str) -> Path:
    """Check, before any long work, that ``write_atomic(path, ...)`` can succeed; nothing is created.

    ``path`` must not be a folder or another non-regular file (a device would be replaced), its
    nearest existing ancestor must be a writable folder (a probe file is created there and
    removed: permission bits alone miss read-only mounts, immutable folders and /proc), and each
    name must fit the file system's limits.

    Raises:
        placer.errors.UserError: naming ``option`` and the path, with what is wrong.
    """
    from placer.errors import UserError

    if not str(path).strip():
        raise UserError(f"option {option}: the output file is an empty path; name a file")
    target = Path(path)

    def bad(why: str) -> UserError:
        return UserError(f"option {option}: cannot write {' '.join(str(target).split())!r}: {why}; "
                         f"choose another path")

    ancestor = target.absolute().parent
    while not os.path.exists(ancestor):  # os.path: False (not an error) for a name too long
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise bad(f"{ancestor} is a file, not a folder")
    try:
        name_max = os.pathconf(ancestor, "PC_NAME_MAX")
        path_max = os.pathconf(ancestor, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    full = target.absolute()
    if any(len(os.fsencode(p)) > name_max for p in full.parts) or len(os.fsencode(str(full))) >= path_max:
        raise bad(f"a name is longer than the file system allows ({name_max} bytes per name)")
    if target.is_dir():
        raise bad("it is a folder")
    if target.exists() and not target.is_file():
        raise bad("it exists and is not a regular file")
    try:
        probe_writable(ancestor)
    except OSError as e:
        raise bad(f"{ancestor} is not writable ({e.strerror})") from None
    return target


def probe_writable(folder: str | os.PathLike[str]) -> None:
    """Create and remove a probe file in ``folder``: permission bits alone miss read-only
    mounts, immutable folders and /proc.

    Raises:
        OSError: the folder cannot take a new file (FileNotFoundError: it is not there).
    """
    fd, probe = tempfile.mkstemp(prefix=".placer-probe-", suffix=".tmp", dir=folder)
    os.close(fd)
    os.unlink(probe)
