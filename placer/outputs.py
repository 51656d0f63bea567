"""Output folders: one run's files land together, or not at all.

``placer compile -o DIR`` (and every other command that writes a folder) goes through
``OutputFolder``:

1. ``open_output_folder(path)`` runs *before* any long work (solve, sweep, emulation): the folder
   is created if missing, must be a folder and must be writable (a probe file is created and
   removed), else a ``UserError`` (exit 2) names the path; when the work then fails, a folder the
   run created is removed again (nothing is written on failure). It then takes an exclusive lock on
   the folder, so concurrent runs into one folder are serialised: a later run waits up to
   ``lock_timeout_s`` and then exits 2 naming the locked folder.
2. ``commit({name: data})`` replaces the previous run's files with this run's, together:

   * *exchange* (the normal case: the folder holds only files of earlier placer runs, listed in
     its manifest ``.placer-run.json``, and its parent is writable): the new files and manifest
     are written and fsynced into a staging sibling ``.DIR.placer-stage-*``, which is swapped with
     the folder in one ``renameat2(RENAME_EXCHANGE)`` system call; a reader sees either the old
     set or the new set, never a mix, whenever the process is killed. The old set, now in the
     sibling, is then removed.
   * *journal* (the folder also holds files placer did not write, e.g. ``-o .``, or the parent
     is read-only, or the platform has no ``renameat2``): files are staged inside the folder,
     a journal lists them, and each is renamed into place; a run killed in between leaves the
     journal, and the next placer run into that folder finishes the commit before it does
     anything else. (Swapping a folder that holds a user's other files is not placer's call.)

Stale staging folders and temporary files of killed runs are removed when the lock is next
taken (under the lock no other run is staging), so no ``.tmp`` files stay behind.

Why not a library: ``filelock`` and ``atomicwrites`` give a lock file and single-file atomic
writes respectively; neither replaces a set of files atomically, and a lock *file* would itself
be a stray file beside the outputs. ``fcntl.flock`` on the folder's own descriptor leaves none.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from placer.errors import UserError
from placer.fileio import probe_writable

MANIFEST = ".placer-run.json"
_JOURNAL = ".placer-journal.json"
_STAGE = ".placer-stage-"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
DEFAULT_LOCK_TIMEOUT_S = 600.0


def _renameat2() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


def exchange_paths(a: Path, b: Path) -> bool:
    """Atomically swap two paths (both must exist); False when the platform or file system
    cannot (the caller falls back to the journal)."""
    func = _renameat2()
    if func is None:
        return False
    if func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EXDEV, errno.ENOTSUP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_file(path: Path, data: str | bytes) -> None:
    with open(path, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())


def _bad_folder(path: Path, why: str, option: str = "-o/--output", what: str = "output folder") -> UserError:
    return UserError(f"{what} {path}: {why}; choose another {option} folder")


class OutputFolder:
    """A locked output folder (see the module docstring). Use ``open_output_folder``."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    # -- committing -------------------------------------------------------------------------
    def commit(self, files: Mapping[str, str | bytes]) -> list[Path]:
        """Replace the previous run's files with ``files`` (flat names), all together."""
        for name in files:
            if not name or "/" in name or name.startswith(".") or name in (".", ".."):
                raise ValueError(f"output file name {name!r} must be a plain, visible file name")
        check_replaceable(self.path, files)
        manifest = json.dumps({"files": sorted(files)}, indent=1) + "\n"
        if self._owned_only() and self._commit_exchange(files, manifest):
            return [self.path / n for n in sorted(files)]
        self._commit_journal(files, manifest)
        return [self.path / n for n in sorted(files)]

    def _owned_only(self) -> bool:
        """True when every entry of the folder was written by an earlier placer commit."""
        owned = {MANIFEST, *self._manifest_files()}
        return all(entry.name in owned for entry in os.scandir(self.path))

    def _manifest_files(self) -> list[str]:
        try:
            data = json.loads((self.path / MANIFEST).read_text(encoding="utf-8"))
            return [str(n) for n in data.get("files", [])] if isinstance(data, dict) else []
        except (OSError, ValueError):
            return []

    def _commit_exchange(self, files: Mapping[str, str | bytes], manifest: str) -> bool:
        parent = self.path.parent
        try:
            stage = Path(tempfile.mkdtemp(prefix=f".{self.path.name}{_STAGE}", dir=parent))
        except OSError:
            return False  # read-only parent: the journal works inside the folder
        new_fd = -1
        try:
            for name, data in files.items():
                _write_file(stage / name, data)
            _write_file(stage / MANIFEST, manifest)
            os.chmod(stage, os.stat(self.path).st_mode & 0o7777)
            _fsync_dir(stage)
            # Lock the new folder before it goes live, so the lock never lapses.
            new_fd = os.open(stage, os.O_RDONLY | os.O_DIRECTORY)
            fcntl.flock(new_fd, fcntl.LOCK_EX)
            if not exchange_paths(stage, self.path):
                os.close(new_fd)
                shutil.rmtree(stage, ignore_errors=True)
                return False
        except BaseException:
            if new_fd >= 0:
                os.close(new_fd)
            shutil.rmtree(stage, ignore_errors=True)
            raise
        _fsync_dir(parent)
        # ``stage`` now holds the previous run's files and the inode locked until now.
        self.close()
        self._fd = new_fd
        shutil.rmtree(stage, ignore_errors=True)
        return True

    def _commit_journal(self, files: Mapping[str, str | bytes], manifest: str) -> None:
        stage = Path(tempfile.mkdtemp(prefix=_STAGE, dir=self.path))
        try:
            for name, data in files.items():
                _write_file(stage / name, data)
            _write_file(stage / MANIFEST, manifest)
            _fsync_dir(stage)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        journal = {"stage": stage.name, "files": sorted([*files, MANIFEST])}
        tmp = self.path / f"{_STAGE}journal.tmp"
        _write_file(tmp, json.dumps(journal))
        os.replace(tmp, self.path / _JOURNAL)
        _fsync_dir(self.path)
        self._finish_journal()

    def _finish_journal(self) -> None:
        """Roll an interrupted journal commit forward (files whose staged copy is gone were
        already renamed into place)."""
        journal_path = self.path / _JOURNAL
        try:
            journal = json.loads(journal_path.read_text(encoding="utf-8"))
            stage = self.path / str(journal["stage"])
            names = [str(n) for n in journal["files"]]
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError):
            journal_path.unlink(missing_ok=True)  # a torn journal: nothing was renamed yet
            return
        for name in names:
            if "/" in name or name in ("", ".", ".."):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.replace(stage / name, self.path / name)
        _fsync_dir(self.path)
        journal_path.unlink(missing_ok=True)
        shutil.rmtree(stage, ignore_errors=True)

    # -- housekeeping under the lock ------------------------------------------------------------
    def _clean_stale(self) -> None:
        """Finish an interrupted journal, then remove what killed runs left behind."""
        self._finish_journal()
        prefix = f".{self.path.name}{_STAGE}"
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.path.parent):
                if entry.name.startswith(prefix) and entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
        for entry in os.scandir(self.path):
            stale_stage = entry.name.startswith(_STAGE)
            stale_tmp = entry.name.startswith(".") and entry.name.endswith(".tmp")  # write_atomic's
            if stale_stage or stale_tmp:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1


def check_replaceable(folder: Path, names: Iterable[str]) -> None:
    """Each output name in ``folder`` is absent or a file a new file can replace (a folder or
    other non-file of that name would fail the rename after the work)."""
    for name in names:
        try:
            st = os.lstat(folder / name)
        except FileNotFoundError:
            continue
        except OSError as e:
            raise _bad_folder(folder, f"its entry {name!r} cannot be checked ({e.strerror})") from None
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            raise _bad_folder(folder, f"holds {name!r}, which is not a file, where placer writes its "
                                      f"{name}; move it away")


def prepare_output_folder(path: str | os.PathLike[str], option: str = "-o/--output",
                          what: str = "output folder") -> Path:
    """Create ``path`` if needed and check that it is a writable folder (``UserError`` if not,
    naming ``option``, e.g. ``--cache`` for a sweep's row cache, and ``what`` the folder is)."""
    if not str(path).strip():   # `-o ""` (an unset shell variable) would write into the current folder
        raise UserError(f"option {option}: the {what} is an empty path; name a folder (use . for "
                        "the current one)")
    folder = Path(path)
    try:
        exists = os.stat(folder) is not None
    except (FileNotFoundError, NotADirectoryError):
        exists = False  # mkdir below names a path component that is a file
    except OSError as e:  # a name past the file system's limit, a symlink loop, ...
        raise _bad_folder(Path(_short(str(folder))), f"cannot be used ({e.strerror})", option, what) from None
    if exists and not folder.is_dir():
        raise _bad_folder(folder, "exists and is not a folder", option, what)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise _bad_folder(folder, "a path component is a file, not a folder", option, what) from None
    except NotADirectoryError:
        raise _bad_folder(folder, "a path component is a file, not a folder", option, what) from None
    except OSError as e:
        raise _bad_folder(Path(_short(str(folder))), f"cannot be created ({e.strerror})", option,
                          what) from None
    for attempt in range(3):
        try:
            probe_writable(folder)
            break
        except FileNotFoundError:
            # another run is swapping its files in: the folder is briefly away; create it again
            if attempt == 2:
                raise _bad_folder(folder, "is not writable (it keeps disappearing)", option, what) from None
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _bad_folder(folder, f"is not writable ({e.strerror})", option, what) from None
    return folder.resolve()


def _short(text: str, limit: int = 120) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit // 2]}...{text[-limit // 2:]} ({len(text):,} characters)"


@contextlib.contextmanager
def open_output_folder(path: str | os.PathLike[str], lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
                       names: Iterable[str] = ()) -> Iterator[OutputFolder]:
    """The checked, locked output folder; the lock is held until the block ends. ``names``: the
    files the run will write, checked replaceable before the work (``commit`` checks them again)."""
    created = not os.path.lexists(path)
    folder = prepare_output_folder(path)
    check_replaceable(folder, names)
    deadline = time.monotonic() + lock_timeout_s
    while True:
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            raise _bad_folder(folder, f"cannot be opened ({e.strerror})") from None
        acquired = False
        while not acquired:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                acquired = True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise UserError(
                        f"output folder {folder} is locked by another placer run for more than "
                        f"{lock_timeout_s:g} s; wait for it to finish or choose another -o/--output "
                        f"folder") from None
                time.sleep(0.05)
        # The previous holder may have swapped the folder while we waited: lock the live one.
        try:
            same = os.stat(folder).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
            with contextlib.suppress(OSError):
                folder.mkdir(parents=True, exist_ok=True)
        if same:
            break
        os.close(fd)
    out = OutputFolder(folder, fd)
    try:
        out._clean_stale()
        yield out
    except BaseException:
        if created:  # a failed run leaves no trace: not even the folder it made
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if still empty
        raise
    finally:
        out.close()


def write_output_files(path: str | os.PathLike[str], files: Mapping[str, str | bytes],
                       lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> list[Path]:
    """Lock ``path``, replace its files with ``files`` together, unlock."""
    with open_output_folder(path, lock_timeout_s) as out:
        return out.commit(files)
