"""Filesystem helpers of the file connectors: path resolution, discovery, opening, renaming.

Paths are plain local paths or fsspec URLs (``file:///data``, ``memory://bucket/x``). Every
path the connectors hand around (in splits, committables, logs) keeps the caller's style: a
local input stays a plain absolute path, a URL input yields URLs with the same protocol, so
the string can be reopened anywhere with :func:`resolve`.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import logging
import lzma
import os
import zipfile
from collections.abc import Callable, Iterable
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from strom.errors import ConnectorError

logger = logging.getLogger(__name__)

_GLOB_CHARS = frozenset("*?[")
"""Characters that make a path a glob pattern (fsspec/glob syntax)."""

_DECOMPRESSORS: dict[str, Callable[[IO[bytes]], Any]] = {
    ".gz": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
    ".bz2": lambda raw: bz2.BZ2File(raw, mode="rb"),
    ".xz": lambda raw: lzma.LZMAFile(raw, mode="rb"),
}
"""Streaming decompressors by lower-case file extension (``.zip`` is handled apart)."""


def is_hidden(name: str) -> bool:
    """Return True for names the file source skips: starting with ``.`` or ``_``.

    This mirrors Flink's default file filter and hides the file sink's in-progress files
    (``.part-0-0.inprogress.<uuid>``) and markers such as ``_SUCCESS``.
    """
    return name.startswith((".", "_"))


def resolve(path: str) -> tuple[Any, str]:
    """Return ``(filesystem, path_within_filesystem)`` for a local path or fsspec URL.

    Raises:
        ConnectorError: the URL's protocol is unknown or its filesystem cannot be created.
    """
    try:
        fs, fs_path = fsspec.core.url_to_fs(path)
    except (ValueError, ImportError) as exc:
        msg = f"Cannot open filesystem for '{path}': {exc}; check the URL's protocol."
        raise ConnectorError(msg) from exc
    return fs, fs_path


def is_local(fs: Any) -> bool:
    """True if ``fs`` is the local filesystem (os-level calls may be used)."""
    return isinstance(fs, LocalFileSystem)


def _externalize(fs: Any, fs_path: str, as_url: bool) -> str:
    """Turn a filesystem path back into the caller's style (plain local path or URL)."""
    return str(fs.unstrip_protocol(fs_path)) if as_url else fs_path


def join(base: str, *parts: str) -> str:
    """Join a base path/URL with relative parts using '/' (valid for local and URLs)."""
    out = base.rstrip("/") if len(base) > 1 else base
    for part in parts:
        if part:
            out = f"{out}/{part.strip('/')}"
    return out


def _glob_base(fs_path: str) -> str:
    """The longest leading directory of a glob pattern that contains no glob characters."""
    parts = fs_path.split("/")
    base: list[str] = []
    for part in parts[:-1]:
        if _GLOB_CHARS.intersection(part):
            break
        base.append(part)
    return "/".join(base)


def _visible_below(base: str, fs_path: str) -> bool:
    """True if no path component of ``fs_path`` below ``base`` is hidden."""
    rel = fs_path[len(base) :].lstrip("/") if fs_path.startswith(base) else fs_path
    return not any(is_hidden(part) for part in rel.split("/") if part)


def list_files(path_spec: str) -> list[str]:
    """List the files one source path stands for, sorted.

    Args:
        path_spec: a file, a directory (all files beneath it, recursively) or a glob pattern
            (``*``, ``?``, ``[...]``, ``**``); a local path or an fsspec URL.

    Returns:
        Paths in the caller's style (plain for local inputs, URLs for URL inputs). Hidden
        files and directories (see :func:`is_hidden`) below a directory or glob base are
        skipped; a file named explicitly is always included.

    Raises:
        ConnectorError: a non-glob path does not exist or the filesystem failed.
    """
    fs, fs_path = resolve(path_spec)
    as_url = "://" in path_spec
    try:
        if _GLOB_CHARS.intersection(fs_path):
            base = _glob_base(fs_path)
            found: list[str] = []
            for match in fs.glob(fs_path):
                if fs.isdir(match):
                    found.extend(f for f in fs.find(match) if _visible_below(base, f))
                elif _visible_below(base, match):
                    found.append(match)
            if not found:
                logger.warning("File source glob '%s' matches no files (yet).", path_spec)
        elif fs.isdir(fs_path):
            found = [f for f in fs.find(fs_path) if _visible_below(fs_path, f)]
        elif fs.isfile(fs_path):
            found = [fs_path]
        else:
            msg = (
                f"File source path '{path_spec}' does not exist; check the path (a monitored "
                "directory must exist before the job starts)."
            )
            raise ConnectorError(msg)
    except OSError as exc:
        msg = f"Cannot list files of '{path_spec}': {exc}"
        raise ConnectorError(msg) from exc
    return sorted({_externalize(fs, f, as_url) for f in found})


def list_all_files(path_specs: Iterable[str]) -> list[str]:
    """List the files of several path specs, de-duplicated, in sorted path order."""
    out: set[str] = set()
    for spec in path_specs:
        out.update(list_files(spec))
    return sorted(out)


def compression_of(path: str) -> str | None:
    """The compression extension of ``path`` (``.gz``, ``.bz2``, ``.xz``, ``.zip``) or None."""
    lower = path.lower()
    for ext in (*_DECOMPRESSORS, ".zip"):
        if lower.endswith(ext):
            return ext
    return None


def open_input(path: str, stack: contextlib.ExitStack, decompress: bool) -> IO[bytes]:
    """Open ``path`` for binary reading; every opened layer is registered on ``stack``.

    Args:
        path: a local path or fsspec URL as produced by :func:`list_files`.
        stack: closes the file (and any decompressor) when the caller is done.
        decompress: if True, ``.gz``/``.bz2``/``.xz``/``.zip`` files are decompressed
            transparently (a ``.zip`` must hold exactly one file).

    Returns:
        A readable binary stream; seekable when ``decompress`` is False.

    Raises:
        ConnectorError: the file cannot be opened, or a zip archive does not hold exactly
            one member.
    """
    fs, fs_path = resolve(path)
    try:
        raw: IO[bytes] = open(fs_path, "rb") if is_local(fs) else fs.open(fs_path, "rb")
        stack.callback(raw.close)
        ext = compression_of(path) if decompress else None
        if ext is None:
            return raw
        if ext == ".zip":
            archive = zipfile.ZipFile(raw)
            stack.callback(archive.close)
            members = [m for m in archive.infolist() if not m.is_dir()]
            if len(members) != 1:
                names = [m.filename for m in members]
                msg = (
                    f"Zip file '{path}' holds {len(members)} files {names[:5]}; the file "
                    "source reads zip archives with exactly one member: split the archive."
                )
                raise ConnectorError(msg)
            member: IO[bytes] = archive.open(members[0])
            stack.callback(member.close)
            return member
        stream: IO[bytes] = _DECOMPRESSORS[ext](raw)
        stack.callback(stream.close)
        return stream
    except (OSError, zipfile.BadZipFile) as exc:
        msg = f"Cannot open '{path}' for reading: {exc}"
        raise ConnectorError(msg) from exc


def open_output(path: str) -> IO[bytes]:
    """Create (truncate) ``path`` for binary writing, creating parent directories.

    Raises:
        ConnectorError: the file or its directory cannot be created.
    """
    fs, fs_path = resolve(path)
    try:
        if is_local(fs):
            os.makedirs(os.path.dirname(fs_path) or ".", exist_ok=True)
            return open(fs_path, "wb")
        parent = fs._parent(fs_path)
        if parent:
            fs.makedirs(parent, exist_ok=True)
        handle: IO[bytes] = fs.open(fs_path, "wb")
        return handle
    except OSError as exc:
        msg = f"Cannot create '{path}': {exc}; check that the sink's base path is writable."
        raise ConnectorError(msg) from exc


def sync_and_close(handle: IO[bytes]) -> None:
    """Flush, fsync (for local files) and close a handle from :func:`open_output`."""
    try:
        handle.flush()
        fileno = getattr(handle, "fileno", None)
        if fileno is not None:
            # Streams without a descriptor (remote files) raise UnsupportedOperation.
            with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
                os.fsync(fileno())
    finally:
        handle.close()


def list_names(directory: str) -> list[str]:
    """Base names of the entries of ``directory`` (hidden ones included); [] if missing."""
    fs, fs_path = resolve(directory)
    try:
        if is_local(fs):
            return os.listdir(fs_path) if os.path.isdir(fs_path) else []
        if not fs.isdir(fs_path):
            return []
        return [str(p).rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(fs_path, detail=False)]
    except OSError as exc:
        msg = f"Cannot list '{directory}': {exc}"
        raise ConnectorError(msg) from exc


def exists(path: str) -> bool:
    """True if ``path`` exists."""
    fs, fs_path = resolve(path)
    return bool(os.path.exists(fs_path) if is_local(fs) else fs.exists(fs_path))


def rename(src: str, dst: str) -> None:
    """Rename ``src`` to ``dst`` (atomic on a local filesystem; copy+delete on object stores).

    Raises:
        ConnectorError: the rename failed.
    """
    fs, src_path = resolve(src)
    _, dst_path = resolve(dst)
    try:
        if is_local(fs):
            os.rename(src_path, dst_path)
        else:
            fs.mv(src_path, dst_path)
    except OSError as exc:
        msg = f"Cannot rename '{src}' to '{dst}': {exc}"
        raise ConnectorError(msg) from exc


def remove(path: str) -> None:
    """Delete ``path`` if it exists; errors are logged, not raised (best-effort cleanup)."""
    fs, fs_path = resolve(path)
    try:
        if is_local(fs):
            with contextlib.suppress(FileNotFoundError):
                os.remove(fs_path)
        elif fs.exists(fs_path):
            fs.rm(fs_path)
    except OSError as exc:
        logger.warning("Could not delete '%s': %s", path, exc)
