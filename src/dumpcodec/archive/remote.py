"""Archives in object storage: any fsspec URL (``s3://``, ``gs://``, ``az://``, ...).

A URL is recognised by its scheme (``scheme://``); a plain path never imports fsspec.
``file://`` URLs are local paths (written under a temporary name and renamed, as any
local archive).  ``pip install 'dumpcodec[s3]'`` (``[gcs]``, ``[azure]``) brings fsspec
and the filesystem.

Reading (:class:`RangedReader`): a seekable, read-only file object that fetches byte
ranges (``fs.cat_file(path, start, end)``: an HTTP ranged GET on S3) with a read-ahead
that starts small after a seek and doubles while reading goes on in order, so that
``ls`` (the locator, then the manifest at the end) and one table's members cost a few
small requests, while a whole pass streams in large ones.  Every reader has its own
buffer: ``load -j N`` opens one per worker and reads members in parallel.

Writing (:class:`RemoteDestination`): the archive goes up while the dump runs, as a
multipart upload (S3: parts of :data:`PART_SIZE`, memory a few parts) fed by a
background thread through a bounded queue; the object appears under its name only
when the upload is completed at the end, and a failed or interrupted dump aborts the
upload (``discard``): no object is left, as a local dump leaves no file.

Configuration is the filesystem's own: for S3 the standard AWS environment and
profile (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ...; botocore
reads them), plus ``storage_options`` (keyword arguments of the fsspec filesystem, as
pandas and pyarrow take them; the CLI's ``--storage-option KEY=VALUE``).

Errors: transient ones (timeouts, connection resets, 5xx, throttling) are retried
with backoff, by botocore and s3fs (S3: botocore's ``standard`` retry mode, 5
attempts, unless ``config_kwargs``, ``AWS_MAX_ATTEMPTS`` or ``AWS_RETRY_MODE`` say
otherwise) and here around every ranged read;
what is left raises :class:`~dumpcodec.errors.StorageError`, one line naming the URL
and the reason.  No message or log line holds a credential: URLs are shown without
user info, and the values of secret options and AWS secret variables are masked.
"""
from __future__ import annotations

import io
import json
import logging
import os
import queue
import re
import threading
import time
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple
from urllib.parse import unquote, urlsplit

from ..errors import StorageError

log = logging.getLogger(__name__)

#: bytes of one part of a multipart upload (S3 allows 10,000 parts: 156 GiB at this
#: size; ``storage_options={"part_size": ...}`` chooses another, at least 5 MiB)
PART_SIZE = 16 << 20
#: first read-ahead after a seek, and its ceiling while reading in order
MIN_READ_AHEAD = 64 << 10
MAX_READ_AHEAD = 8 << 20
#: attempts of one ranged read (on top of the filesystem's own retries) and the
#: first backoff, doubled after each failure
READ_ATTEMPTS = 4
BACKOFF = 0.25

_URL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")

#: extra to install per protocol (pip install 'dumpcodec[EXTRA]')
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure",
           "abfs": "azure", "abfss": "azure", "adl": "azure"}

#: option names (any level of nesting) whose values are secrets
_SECRET_KEY_RE = re.compile(
    r"(secret|token|password|passwd|credential|key$|^key|sas|signature|account_key|"
    r"connection_string)", re.IGNORECASE)
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
               "AWS_ACCESS_KEY_ID", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN",
               "AZURE_STORAGE_CONNECTION_STRING", "AZURE_CLIENT_SECRET",
               "GOOGLE_APPLICATION_CREDENTIALS_JSON")


def is_url(source: Any) -> bool:
    """Whether ``source`` is a URL (``scheme://...``) rather than a path or a file."""
    if isinstance(source, bytes):
        source = os.fsdecode(source)
    return isinstance(source, str) and _URL_RE.match(source) is not None


def local_path(url: str) -> Optional[str]:
    """The local path of a ``file://`` URL (None for any other URL)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        return None
    if parts.netloc not in ("", "localhost"):
        raise StorageError(f"{shown_url(url)}: a file:// URL names a local path "
                           "(file:///path), not a host")
    return unquote(parts.path)


def shown_url(url: str) -> str:
    """``url`` as it may be shown: without user info (``s3://KEY:SECRET@bucket``),
    query or fragment (where signed URLs keep their signatures)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


# -- options and secrets -----------------------------------------------------------------

def parse_storage_option(text: str) -> Tuple[str, Any]:
    """``KEY=VALUE`` of ``--storage-option`` -> ``(key, value)``.

    VALUE is read as JSON where it is JSON (``true``, ``3``, ``{"a": 1}``), else kept
    as text; dotted keys nest (``client_kwargs.region_name=eu-west-1``)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        # the text itself is not shown: it may be a secret typed without its key
        raise ValueError("--storage-option expects KEY=VALUE (an argument had no '=' "
                         "or no key)")
    try:
        parsed: Any = json.loads(value)
    except ValueError:
        parsed = value
    return key, parsed


def storage_options_from(pairs: Optional[Iterable[str]]) -> Dict[str, Any]:
    """The options of repeated ``--storage-option KEY=VALUE`` as one mapping."""
    out: Dict[str, Any] = {}
    for text in pairs or ():
        key, value = parse_storage_option(text)
        *path, last = key.split(".")
        node = out
        for p in path:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"--storage-option {key}: {p} is given a value too")
        node[last] = value
    return out


def _secrets(options: Optional[Mapping[str, Any]]) -> list:
    found = [os.environ[k] for k in _SECRET_ENV if os.environ.get(k)]

    def walk(node: Any, secret: bool) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, secret or bool(_SECRET_KEY_RE.search(str(k))))
        elif isinstance(node, (list, tuple)):
            for v in node:
                walk(v, secret)
        elif secret and node is not None and str(node):
            found.append(str(node))

    walk(options or {}, False)
    # longest first: a secret that contains another is masked whole
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def scrub(text: str, options: Optional[Mapping[str, Any]] = None) -> str:
    """``text`` with every known secret (secret options, AWS secret variables) masked."""
    for s in _secrets(options):
        text = text.replace(s, "***")
    return text


def _reason(exc: BaseException) -> str:
    """One line saying what went wrong, from the filesystem's exception."""
    msg = " ".join(str(exc).split())
    name = type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        return "not found" + (f" ({msg})" if msg else "")
    if isinstance(exc, PermissionError):
        return f"permission denied ({msg})" if msg else "permission denied"
    return f"{name}: {msg}" if msg else name


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError,
                        NotADirectoryError, StorageError)):
        return False
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    text = f"{type(exc).__name__} {exc}"
    return bool(re.search(r"timeout|timed out|throttl|slow ?down|reduce your request|"
                          r"temporar|unavailable|internal ?error|connection|reset|"
                          r"broken pipe|payload|incomplete|\b5\d\d\b|server error",
                          text, re.IGNORECASE))


# -- the filesystem -----------------------------------------------------------------------

def _s3_defaults(opts: Dict[str, Any]) -> None:
    # botocore's standard retry mode retries 5xx, throttling and connection errors
    # with exponential backoff and jitter; 5 attempts instead of its 3
    # (unless the user chose: AWS_MAX_ATTEMPTS / AWS_RETRY_MODE, or config_kwargs)
    if os.environ.get("AWS_MAX_ATTEMPTS") or os.environ.get("AWS_RETRY_MODE"):
        return
    config = dict(opts.get("config_kwargs") or {})
    config.setdefault("retries", {"max_attempts": 5, "mode": "standard"})
    opts["config_kwargs"] = config


def filesystem(url: str, storage_options: Optional[Mapping[str, Any]] = None
               ) -> Tuple[Any, str]:
    """``(fs, path)`` for ``url``: the fsspec filesystem with ``storage_options``.

    A missing fsspec or filesystem package raises StorageError saying which extra
    to install."""
    scheme = url.split("://", 1)[0].lower()
    extra = _EXTRAS.get(scheme)
    hint = (f"pip install 'dumpcodec[{extra}]'" if extra
            else "pip install fsspec and the package of this filesystem")
    try:
        import fsspec.core
    except ImportError:
        raise StorageError(f"{shown_url(url)}: archives at URLs need fsspec ({hint})"
                           ) from None
    opts = dict(storage_options or {})
    opts.pop("part_size", None)
    if scheme in ("s3", "s3a"):
        _s3_defaults(opts)
    try:
        fs, path = fsspec.core.url_to_fs(url, **opts)
    except ImportError as exc:
        raise StorageError(f"{shown_url(url)}: the {scheme}:// filesystem is not "
                           f"installed ({hint}): {scrub(str(exc), opts)}") from None
    except ValueError as exc:
        raise StorageError(f"{shown_url(url)}: {scrub(_reason(exc), opts)}") from None
    except TypeError as exc:      # an option the filesystem does not know
        raise StorageError(f"{shown_url(url)}: bad storage option: "
                           f"{scrub(str(exc), opts)}") from None
    return fs, path


def _fail(url: str, what: str, exc: BaseException,
          options: Optional[Mapping[str, Any]]) -> StorageError:
    return StorageError(scrub(f"{shown_url(url)}: {what}: {_reason(exc)}", options))


# -- reading ------------------------------------------------------------------------------

class RangedReader(io.RawIOBase):
    """A read-only, seekable file object on one remote object, read by byte ranges.

    ``fetched`` counts the bytes received, ``requests`` the range requests made."""

    def __init__(self, url: str, storage_options: Optional[Mapping[str, Any]] = None):
        self.url = url
        self.name = shown_url(url)
        self._options = storage_options
        self._fs, self._path = filesystem(url, storage_options)
        try:
            info = self._call(lambda: self._fs.info(self._path), "cannot open")
        except StorageError:
            raise
        if info.get("type") == "directory":
            raise StorageError(f"{self.name}: a directory (prefix), not an archive object")
        self.size = int(info["size"])
        self._pos = 0
        self._buf = b""
        self._buf_start = 0
        self._ahead = MIN_READ_AHEAD
        self.fetched = 0
        self.requests = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"bad whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, b) -> int:
        view = memoryview(b).cast("B")
        want = len(view)
        if want == 0 or self._pos >= self.size:
            return 0
        end_buf = self._buf_start + len(self._buf)
        if not (self._buf_start <= self._pos < end_buf):
            sequential = self._pos == end_buf and self._buf
            # after a seek, a quarter of what the last run in order reached: reading
            # member after member of one table (read_members) starts large again,
            # while the small reads of ls (head, locator, manifest) stay small
            self._ahead = (min(self._ahead * 2, MAX_READ_AHEAD) if sequential
                           else max(MIN_READ_AHEAD, self._ahead // 4))
            # not ``want``: a decompressor asks for a megabyte of input where one
            # small member may be all that is needed
            n = min(self._ahead, self.size - self._pos)
            self._buf = self._fetch(self._pos, self._pos + n)
            self._buf_start = self._pos
            if not self._buf:
                return 0
        off = self._pos - self._buf_start
        n = min(want, len(self._buf) - off)
        view[:n] = self._buf[off:off + n]
        self._pos += n
        return n

    def _fetch(self, start: int, end: int) -> bytes:
        data = self._call(lambda: self._fs.cat_file(self._path, start=start, end=end),
                          f"reading bytes {start}-{end - 1}")
        self.requests += 1
        self.fetched += len(data)
        if len(data) != end - start:
            raise StorageError(f"{self.name}: reading bytes {start}-{end - 1}: got "
                               f"{len(data)} bytes (the object changed or was cut?)")
        return bytes(data)

    def _call(self, fn, what: str):
        delay = BACKOFF
        for attempt in range(1, READ_ATTEMPTS + 1):
            try:
                return fn()
            except Exception as exc:
                if attempt == READ_ATTEMPTS or not _is_transient(exc):
                    raise _fail(self.url, what, exc, self._options) from None
                log.debug("%s: %s: %s; retry %d in %.2f s", self.name, what,
                          scrub(_reason(exc), self._options), attempt, delay)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._buf = b""
        super().close()


# -- writing ------------------------------------------------------------------------------

_STOP = object()
#: bytes gathered before one hand-over to the upload thread
_BLOCK = 1 << 20


class RemoteDestination:
    """An archive being uploaded to ``url``: :meth:`open` gives the file object to
    write to, :meth:`commit` completes the upload (the object appears), :meth:`discard`
    aborts it (no object).  The interface of :class:`dumpcodec.dump._Destination`."""

    def __init__(self, url: str, storage_options: Optional[Mapping[str, Any]] = None):
        self.url = url
        #: the URL as shown in summaries and reports (no user info)
        self.path = shown_url(url)
        self._options = dict(storage_options or {})
        self.part_size = int(self._options.get("part_size") or PART_SIZE)
        if self.part_size < 5 << 20:
            raise StorageError(f"{self.path}: part_size must be at least 5 MiB "
                               f"(S3's smallest part), not {self.part_size}")
        self._fs, self._path = filesystem(url, self._options)
        if self._path.endswith("/") or not self._path.strip("/"):
            raise StorageError(f"{self.path}: names a bucket or prefix, not an object")
        self._file: Any = None
        self._tmp: Optional[str] = None
        # half a part queued ahead of the part being filled and the one going up
        self._queue: "queue.Queue" = queue.Queue(
            maxsize=max(2, self.part_size // _BLOCK // 2))
        self._pending = bytearray()
        self._thread: Optional[threading.Thread] = None
        self._error: Optional[BaseException] = None
        self._cancel = threading.Event()
        self.count = 0

    # the file object the archive writer writes to
    def open(self) -> "RemoteDestination":
        # Buffered files of object stores (S3, GCS, Azure) with autocommit=False:
        # close() sends the last part and commit() completes the upload, discard()
        # aborts it.  The memory filesystem shows a file from its open on: there the
        # archive goes to a temporary name, moved at the end.
        protocols = self._fs.protocol
        protocols = (protocols,) if isinstance(protocols, str) else tuple(protocols)
        target = self._path
        if "memory" in protocols:
            self._tmp = f"{self._path}.{os.getpid()}-{id(self):x}.partial"
            target = self._tmp
        try:
            self._file = self._fs.open(target, "wb", block_size=self.part_size,
                                       autocommit=False)
        except Exception as exc:
            raise _fail(self.url, "cannot start the upload", exc, self._options) from None
        self._thread = threading.Thread(target=self._upload, name="dumpcodec-upload",
                                        daemon=True)
        self._thread.start()
        return self

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        n = len(view)
        self.count += n
        if len(self._pending) + n < _BLOCK:
            self._pending += view
            return n
        # queued in blocks of _BLOCK bytes: the queue bounds memory by its byte count
        room = _BLOCK - len(self._pending)
        self._pending += view[:room]
        self._hand_over()
        for start in range(room, n, _BLOCK):
            piece = view[start:start + _BLOCK]
            if len(piece) < _BLOCK:
                self._pending += piece
            else:
                self._put(bytes(piece))
        return n

    def flush(self) -> None:
        # the archive writer flushes at the end; parts go up as they fill
        self._check()

    def _hand_over(self) -> None:
        block, self._pending = bytes(self._pending), bytearray()
        self._put(block)

    def _put(self, block: bytes) -> None:
        while True:
            self._check()
            try:
                self._queue.put(block, timeout=0.5)
                return
            except queue.Full:
                continue

    def _check(self) -> None:
        if self._error is not None:
            raise self._error
        if self._thread is not None and not self._thread.is_alive() \
                and not self._cancel.is_set():
            raise StorageError(f"{self.path}: the upload stopped")

    def _upload(self) -> None:
        try:
            while True:
                block = self._queue.get()
                if block is _STOP or self._cancel.is_set():
                    return
                self._file.write(block)
        except BaseException as exc:
            self._error = _fail(self.url, "upload failed", exc, self._options)
            self._cancel.set()

    def commit(self) -> Optional[int]:
        """Send what is left and complete the upload; the object's size."""
        if self._pending:
            self._hand_over()
        self._put(_STOP)
        assert self._thread is not None
        self._thread.join()
        if self._error is not None:
            raise self._error
        try:
            self._file.close()      # the last part
            if self._tmp is not None:
                self._fs.mv(self._tmp, self._path)
                self._tmp = None
            else:
                self._file.commit()     # completes the multipart upload
        except Exception as exc:
            self.discard()
            raise _fail(self.url, "completing the upload failed", exc,
                        self._options) from None
        self._file = None
        log.info("uploaded %s: %d bytes", self.path, self.count)
        return self.count

    def discard(self) -> None:
        """Abort the upload: no object appears (S3: the multipart upload is aborted)."""
        self._cancel.set()
        if self._thread is not None:
            while self._thread.is_alive():
                try:
                    self._queue.put_nowait(_STOP)
                except queue.Full:
                    try:
                        self._queue.get_nowait()
                    except queue.Empty:
                        pass
                self._thread.join(0.1)
        self._pending = bytearray()
        if self._file is None:
            return
        try:
            if self._tmp is not None:
                self._file.close()
                if self._fs.exists(self._tmp):
                    self._fs.rm(self._tmp)
                self._tmp = None
            else:
                self._file.discard()
                # and never close it: closing would send the buffered rest as a part
                # (fsspec's files close themselves when collected, unless closed)
                self._file.closed = True
        except Exception as exc:     # the upload stays unfinished: never an object
            log.warning("%s", scrub(f"{self.path}: aborting the upload failed: "
                                    f"{_reason(exc)}", self._options))
        self._file = None


__all__ = ["is_url", "local_path", "shown_url", "filesystem", "scrub",
           "parse_storage_option", "storage_options_from", "RangedReader",
           "RemoteDestination", "PART_SIZE"]
