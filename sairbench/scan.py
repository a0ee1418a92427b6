"""Folder scans that stay inside the folder given: the files of a mask folder, an image folder or a
prediction folder.

``files_in(folder, extensions, depth)`` lists the regular files with those extensions directly in
``folder`` and, with ``depth`` d > 0, in its sub-folders down to d levels (the Liu et al. 2018
layout: ``mask/testing_mask_dataset/*.png`` under the folder given). It never leaves the folder:
a symbolic link is taken only when it points to a file inside the folder (links to folders are
not descended, so no loop and no escape), hidden names are skipped, special files (FIFOs,
devices) are skipped, and at most ``max_entries()`` directory entries are looked at
(``$SAIRBENCH_MAX_SCAN_ENTRIES``, default 200,000; the Liu et al. 2018 test set holds 12,000), so
a folder such as ``/`` is refused in one line instead of walked.
"""

from __future__ import annotations

import os
from pathlib import Path

from sairbench.errors import SairbenchError

ENV_MAX_ENTRIES = "SAIRBENCH_MAX_SCAN_ENTRIES"
DEFAULT_MAX_ENTRIES = 200_000


def max_entries() -> int:
    """The most directory entries one scan looks at: ``$SAIRBENCH_MAX_SCAN_ENTRIES``, else 200,000."""
    from sairbench.validate import env_limit

    return env_limit(ENV_MAX_ENTRIES, DEFAULT_MAX_ENTRIES)


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # a broken or looping link
        return False


def files_in(folder: Path, extensions: tuple[str, ...], depth: int = 0, what: str = "folder") -> list[Path]:
    """The files of ``folder`` with one of ``extensions`` (lower case, with the dot), sorted; see
    the module docstring. ``what`` names the folder in the one-line errors."""
    folder = Path(folder)
    root = folder.resolve()
    limit, seen, found = max_entries(), 0, []
    todo = [(folder, 0)]
    while todo:
        current, level = todo.pop()
        try:
            entries = list(os.scandir(current))
        except OSError as exc:
            if current == folder:
                raise SairbenchError(f"{folder}: cannot list this {what} ({exc.strerror or type(exc).__name__}); "
                                     "check the path and its permissions.") from None
            continue  # an unreadable sub-folder holds nothing we can use
        seen += len(entries)
        if seen > limit:
            raise SairbenchError(f"{folder}: more than {limit} entries in this {what} and its sub-folders; pass the "
                                 f"folder that holds the files itself, or raise the limit with ${ENV_MAX_ENTRIES}.")
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                if entry.is_symlink():
                    if path.suffix.lower() in extensions and _inside(path, root) and path.is_file():
                        found.append(path)
                elif entry.is_dir(follow_symlinks=False):
                    if level < depth:
                        todo.append((path, level + 1))
                elif entry.is_file(follow_symlinks=False) and path.suffix.lower() in extensions:
                    found.append(path)
            except OSError:
                continue
    return sorted(found)
