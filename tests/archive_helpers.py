"""Crafting archives in tests: every table as an editable list, and back; a file
that reads like a pipe."""
import io

from dumpcodec.archive import open_dump


class NonSeekable(io.RawIOBase):
    """A file that cannot seek, as a pipe (wrap it in io.BufferedReader)."""
    def __init__(self, f):
        self._f = f

    def readable(self):
        return True

    def readinto(self, b):
        return self._f.readinto(b)


def read_tables(path):
    """[(table_id, definition, columns, types, format, data)] of an archive."""
    out = []
    with open_dump(str(path)) as r:
        for info, chunks in r.iter_tables():
            pieces = [bytes(c) for c in chunks]
            assert len(pieces) == 1, "test tables are small: one chunk each"
            out.append([info.table_id, info.definition, info.columns, info.types,
                        info.format, pieces[0]])
    return out


def write_archive(path, tables, backend="tar"):
    with open_dump(str(path), "w", backend=backend) as w:
        w.set_info(server_version="15", client_encoding="UTF8")
        for table_id, definition, columns, types, fmt, data in tables:
            with w.add_table(table_id, definition, columns, types, format=fmt) as t:
                t.write(data)
