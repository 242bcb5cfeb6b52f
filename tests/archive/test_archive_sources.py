"""Where an archive is read from: regular files, FIFOs, ``/dev/stdin``, directories.

A FIFO or ``/dev/stdin`` on a pipe is read in one pass and never sought; a directory
is a clear ArchiveError (a DumpcodecError), for the library and the CLI.
"""
import io
import os
import subprocess
import sys
import threading

import pytest

from dumpcodec.archive import is_random_access, open_dump
from dumpcodec.cli import main
from dumpcodec.codec import Encoder
from dumpcodec.errors import ArchiveError, DumpcodecError

ROWS = [(i, "v%d" % i) for i in range(50)]


def archive_bytes(backend="zstd") -> bytes:
    enc = Encoder(["int4", "text"])
    buf = io.BytesIO()
    with open_dump(buf, "w", backend=backend, chunk_size=200) as w:
        for name in ("public.a", "public.b"):
            with w.add_table(name, None, ["i", "v"], ["int4", "text"]) as tw:
                tw.write(enc.header() + enc.encode(ROWS) + enc.trailer())
    return buf.getvalue()


class FifoFeeder:
    """A FIFO at ``path`` that a thread fills with ``data`` once a reader opens it."""

    def __init__(self, path, data):
        os.mkfifo(path)
        self.path, self.data, self.error = path, data, None
        self.thread = threading.Thread(target=self._feed, daemon=True)
        self.thread.start()

    def _feed(self):
        try:
            with open(self.path, "wb") as f:
                f.write(self.data)
        except BrokenPipeError:
            pass            # the reader stopped early (cat): as a shell pipe would
        except Exception as exc:  # noqa: BLE001  (reported by join)
            self.error = exc

    def join(self):
        self.thread.join(30)
        assert not self.thread.is_alive() and self.error is None


def test_is_random_access_by_kind_of_source(tmp_path):
    f = tmp_path / "a.dump"
    f.write_bytes(archive_bytes())
    assert is_random_access(str(f)) and is_random_access(f)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert not is_random_access(str(fifo))
    assert not is_random_access("-")
    with open(f, "rb") as fo:
        assert is_random_access(fo)
    r, w = os.pipe()
    with os.fdopen(r, "rb") as pr, os.fdopen(w, "wb"):
        assert not is_random_access(pr)
    with pytest.raises(ArchiveError, match="is a directory"):
        is_random_access(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        is_random_access(str(tmp_path / "missing"))


@pytest.mark.parametrize("stdin_kind", ["pipe", "file"])
def test_dev_stdin_is_random_access_only_when_a_file(tmp_path, stdin_kind):
    f = tmp_path / "a.dump"
    f.write_bytes(archive_bytes())
    code = ("import sys; from dumpcodec.archive import is_random_access, open_dump\n"
            "r = open_dump('/dev/stdin')\n"
            "print(is_random_access('/dev/stdin'), r.seekable,"
            " sum(1 for _ in r.read_rows('public.b')))\n")
    with open(f, "rb") as src:
        if stdin_kind == "pipe":
            out = subprocess.run([sys.executable, "-c", code], input=f.read_bytes(),
                                 capture_output=True, check=True).stdout
        else:
            out = subprocess.run([sys.executable, "-c", code], stdin=src,
                                 capture_output=True, check=True).stdout
    expected = "False False 50" if stdin_kind == "pipe" else "True True 50"
    assert out.decode().strip() == expected


@pytest.mark.parametrize("backend", ["zstd", "gzip", "tar"])
def test_fifo_is_read_in_one_pass(tmp_path, backend):
    data = archive_bytes(backend)
    fifo = str(tmp_path / "fifo")
    feeder = FifoFeeder(fifo, data)
    with open_dump(fifo) as r:
        assert r.seekable is False
        seen = [(info.table_id, sum(1 for _ in chunks)) for info, chunks in r.iter_tables()]
        assert r.complete is True
    feeder.join()
    assert [tid for tid, _ in seen] == ["public.a", "public.b"]


@pytest.mark.parametrize("command", ["ls", "verify", "cat"])
def test_cli_reads_a_fifo(tmp_path, capsys, command):
    fifo = str(tmp_path / "fifo")
    feeder = FifoFeeder(fifo, archive_bytes())
    argv = [command, fifo] + (["public.b"] if command == "cat" else [])
    code = main(argv)
    feeder.join()
    out, err = capsys.readouterr()
    assert code == 0, err
    if command == "cat":
        assert out.splitlines()[0] == "i,v" and len(out.splitlines()) == 51
    elif command == "verify":
        assert out.startswith("OK: 2 tables")


def test_directory_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ArchiveError, match="is a directory, not an archive file") as e:
        open_dump(str(tmp_path))
    assert isinstance(e.value, DumpcodecError)
    with pytest.raises(ArchiveError, match="is a directory"):
        open_dump(str(tmp_path), "w")
    for argv in (["verify", str(tmp_path)], ["ls", str(tmp_path)],
                 ["cat", str(tmp_path), "t"]):
        code = main(argv)
        _, err = capsys.readouterr()
        assert code == 2
        assert "is a directory, not an archive file" in err
