"""Shared machinery of the fuzz harnesses: input layout, both codecs, comparisons.

The harnesses (``fuzz_decoder.py``, ``fuzz_scanner.py``, ``fuzz_archive.py``) and
``tests/hostile/test_fuzz_smoke.py`` use this module; it needs no atheris.

Codec inputs start with a 4-byte control prefix followed by the COPY BINARY stream,
so that the corpus files stay real server streams behind a small, documented head::

    byte 0     mode bits (harness-specific, see each harness)
    byte 1     schema index: 0 = raw (no types), k = SCHEMAS[k] (see below)
    bytes 2-3  split seed: 0 = one feed(), 1 = one byte per feed (short streams),
               anything else = a deterministic random split

Both implementations (``dumpcodec.copy.pure`` and, when built, ``dumpcodec._fastcopy``)
are imported directly, not through the ``DUMPCODEC_IMPL`` switch, so that every input
is run through both and the results compared: same rows, same counters, same error
class and message.  ``FUZZ_IMPLS=python`` (or ``c``) restricts to one.
"""
from __future__ import annotations

import importlib
import math
import os
import random
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from dumpcodec.errors import CopyFormatError, DumpcodecError

PREFIX_SIZE = 4

#: One-column schemas, one per type the codec knows.  Append only: corpus files
#: refer to schemas by index (index 0 is raw, index k is SCHEMAS[k]).
SINGLE_TYPES: List[str] = [
    "bool", "int2", "int4", "int8", "oid", "float4", "float8", "numeric",
    "text", "varchar", "bpchar", "name", '"char"', "bytea", "date", "time",
    "timetz", "timestamp", "timestamptz", "interval", "uuid", "json", "jsonb",
    "jsonpath", "inet", "cidr", "macaddr", "macaddr8", "bit", "varbit", "money",
    "xml", "pg_lsn", "tid", "int4range", "int8range", "numrange", "tsrange",
    "tstzrange", "daterange", "int4multirange", "nummultirange",
    "tstzmultirange", "datemultirange", "int4[]", "int8[]", "text[]",
    "numeric[]", "float8[]", "timestamptz[]", "date[]", "bool[]", "uuid[]",
    "jsonb[]", "bytea[]", "interval[]", "inet[]", "int4range[]", "record",
    "numeric(12,2)", "varchar(10)", "bpchar(5)", "bit(8)", "timestamp(3)",
    "xid", "cid", "xid8", "regclass", "regtype",
]

#: The multi-column table of ``make_corpus.py`` ("alltypes"), in column order.
ALLTYPES: List[Tuple[str, str]] = [
    ("b", "bool"), ("i2", "int2"), ("i4", "int4"), ("i8", "int8"), ("o", "oid"),
    ("f4", "float4"), ("f8", "float8"), ("n", "numeric"), ("n12", "numeric(12,2)"),
    ("t", "text"), ("vc", "varchar(10)"), ("bc", "bpchar(5)"), ("nm", "name"),
    ("ch", '"char"'), ("ba", "bytea"), ("d", "date"), ("tm", "time"),
    ("tmz", "timetz"), ("ts", "timestamp"), ("tsz", "timestamptz"),
    ("iv", "interval"), ("u", "uuid"), ("j", "json"), ("jb", "jsonb"),
    ("jp", "jsonpath"), ("ip", "inet"), ("cd", "cidr"), ("mac", "macaddr"),
    ("mac8", "macaddr8"), ("bt", "bit(8)"), ("vb", "varbit"), ("m", "money"),
    ("x", "xml"), ("lsn", "pg_lsn"), ("ti", "tid"), ("r4", "int4range"),
    ("r8", "int8range"), ("rn", "numrange"), ("rts", "tsrange"),
    ("rtz", "tstzrange"), ("rd", "daterange"), ("mr4", "int4multirange"),
    ("mrd", "datemultirange"), ("a4", "int4[]"), ("a4x2", "int4[]"),
    ("at", "text[]"), ("an", "numeric[]"), ("atz", "timestamptz[]"),
    ("ab", "bool[]"), ("rec", "record"),
]

#: Multi-column schemas after the single-type ones.
MULTI_SCHEMAS: List[List[str]] = [
    [t for _, t in ALLTYPES],
    ["int8", "int4"],                          # the benchmark's narrow table
    ["int8", "int4", "float8", "bool", "text", "timestamptz", "date",
     "numeric(12,2)", "uuid", "jsonb", "int4[]", "bytea"],   # the mixed table
]

SCHEMAS: List[Optional[List[str]]] = (
    [None] + [[t] for t in SINGLE_TYPES] + MULTI_SCHEMAS)


def schema_index(types: Optional[Sequence[str]]) -> int:
    """Index of a schema in SCHEMAS (for writing corpus files)."""
    return SCHEMAS.index(list(types) if types is not None else None)


def pack_input(stream: bytes, mode: int = 0, schema: int = 0, seed: int = 0) -> bytes:
    return bytes([mode & 0xFF, schema & 0xFF, (seed >> 8) & 0xFF, seed & 0xFF]) + stream


def unpack_input(data: bytes) -> Tuple[int, int, int, bytes]:
    """``(mode, schema_index, seed, stream)`` of a fuzz input (short ones padded)."""
    head = data[:PREFIX_SIZE].ljust(PREFIX_SIZE, b"\0")
    return head[0], head[1] % len(SCHEMAS), (head[2] << 8) | head[3], data[PREFIX_SIZE:]


def split(stream: bytes, seed: int) -> List[bytes]:
    """Cut ``stream`` into pieces deterministically from ``seed``.

    Seed 0: one piece.  Seed 1: one byte per piece (streams up to 4 KiB, else 7-byte
    pieces).  Otherwise random cut points, biased to small pieces so that cuts fall
    inside length words.
    """
    n = len(stream)
    if seed == 0 or n <= 1:
        return [stream]
    if seed == 1:
        step = 1 if n <= 4096 else 7
        return [stream[i:i + step] for i in range(0, n, step)]
    rnd = random.Random(seed)
    pieces = []
    pos = 0
    while pos < n:
        size = rnd.choice((1, 2, 3, 4, 5, 7, 11, 19, 64, 1000))
        pieces.append(stream[pos:pos + size])
        pos += size
    return pieces


# ---------------------------------------------------------------------------
# Implementations
# ---------------------------------------------------------------------------

def load_impls() -> Dict[str, Any]:
    """The codec implementations to compare: ``{"python": mod, "c": mod}``.

    ``FUZZ_IMPLS`` (comma-separated) restricts the set; asking for one that does not
    import is an error.  The C core is left out when it is not built (unless asked
    for); both define the whole written API (``tests/codec/test_codec_api.py``), so there
    is no partial module to leave out.
    """
    wanted = os.environ.get("FUZZ_IMPLS", "").strip()
    names = [w.strip() for w in wanted.split(",") if w.strip()] or ["python", "c"]
    mods = {"python": "dumpcodec.copy.pure", "c": "dumpcodec._fastcopy"}
    out: Dict[str, Any] = {}
    for name in names:
        try:
            mod = importlib.import_module(mods[name])
        except ImportError:
            if wanted:
                raise
            continue
        out[name] = mod
    if not out:
        raise ImportError("no codec implementation imports")
    return out


# ---------------------------------------------------------------------------
# Outcomes and their comparison
# ---------------------------------------------------------------------------

class FuzzFailure(AssertionError):
    """A finding: a disagreement, a wrong exception type, a broken invariant."""


@dataclass
class Outcome:
    """What one run of one codec object gave: rows (or a count), counters, error."""
    rows: Any = None
    error: Optional[Tuple[str, str, Any, Any, Any]] = None
    attrs: Dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def error_key(exc: BaseException) -> Tuple[str, str, Any, Any, Any]:
    return (type(exc).__name__, str(exc), getattr(exc, "offset", None),
            getattr(exc, "row", None), getattr(exc, "column", None))


def check_exception(exc: BaseException, allowed=(CopyFormatError,), what: str = "") -> None:
    """Only the documented error class may escape the codec."""
    if not isinstance(exc, allowed):
        raise FuzzFailure(f"{what}: unexpected {type(exc).__name__}: {exc!r}") from exc


def same_value(a: Any, b: Any) -> bool:
    """Deep equality that also holds for NaN and requires identical types."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    try:
        if a == b:
            return True
    except Exception:  # noqa: BLE001 - odd values compare by repr below
        pass
    return repr(a) == repr(b)


def compare(outcomes: Dict[str, Outcome], what: str) -> None:
    """All implementations must agree exactly (rows, counters, error)."""
    items = list(outcomes.items())
    (n0, o0) = items[0]
    for n1, o1 in items[1:]:
        if o0.error != o1.error:
            raise FuzzFailure(f"{what}: errors differ: {n0}={o0.error!r} {n1}={o1.error!r}")
        if not same_value(o0.rows, o1.rows):
            raise FuzzFailure(f"{what}: results differ: {n0}={o0.rows!r:.2000} "
                              f"{n1}={o1.rows!r:.2000}")
        # After an error the counters say where each codec stopped, which is not
        # specified; on success they must agree.
        if o0.error is None and o0.attrs != o1.attrs:
            raise FuzzFailure(f"{what}: counters differ: {n0}={o0.attrs} {n1}={o1.attrs}")


_ATTRS = ("rows", "offset", "done", "flags", "header_size", "tuple_end")


def _attrs(obj) -> Dict[str, Any]:
    return {a: getattr(obj, a, None) for a in _ATTRS}


# ---------------------------------------------------------------------------
# Runners: each gives an Outcome and lets only CopyFormatError through as a result
# ---------------------------------------------------------------------------

def make_decoder(mod, types: Optional[List[str]], raw: bool,
                 names: Optional[List[str]] = None):
    """A Decoder, or None when this codec cannot take these types at all."""
    try:
        return mod.Decoder(types, names=names, raw=raw)
    except (ValueError, KeyError, TypeError, LookupError, NotImplementedError, ImportError):
        return None


def run_decoder(mod, pieces: Sequence[bytes], types: Optional[List[str]],
                raw: bool, what: str = "decoder",
                names: Optional[List[str]] = None) -> Optional[Outcome]:
    dec = make_decoder(mod, types, raw, names)
    if dec is None:
        return None
    rows: List[tuple] = []
    out = Outcome(rows=rows)
    try:
        for piece in pieces:
            rows.extend(dec.feed(piece))
        dec.close()
    except Exception as exc:  # noqa: BLE001 - classified right here
        check_exception(exc, what=f"{what} ({mod.__name__})")
        out.error = error_key(exc)
        # Errors are sticky: the same error again on the next call.
        try:
            dec.close()
        except Exception as again:  # noqa: BLE001
            if error_key(again) != out.error:
                raise FuzzFailure(f"{what} [{mod.__name__}]: error not sticky: "
                                  f"{out.error!r} then "
                                  f"{error_key(again)!r}") from again
        else:
            raise FuzzFailure(f"{what} [{mod.__name__}]: close() after an error did not raise")
    out.attrs = _attrs(dec)
    return out


def run_scanner(mod, pieces: Sequence[bytes], ncols: Optional[int]) -> Outcome:
    sc = mod.Scanner(ncols)
    out = Outcome(rows=0)
    counted = 0
    try:
        for piece in pieces:
            counted += sc.feed(piece)
        sc.close()
    except Exception as exc:  # noqa: BLE001
        check_exception(exc, what=f"scanner ({mod.__name__})")
        out.error = error_key(exc)
    # feed() that raises loses its count; otherwise the counts must add up.
    if out.error is None and counted != sc.rows:
        raise FuzzFailure(f"scanner: feed() returned {counted} rows in all, rows={sc.rows}")
    out.rows = counted
    out.attrs = _attrs(sc)
    return out


def run_scan(mod, stream: bytes) -> Outcome:
    out = Outcome()
    try:
        out.rows = mod.scan(stream)
    except Exception as exc:  # noqa: BLE001
        check_exception(exc, what=f"scan ({mod.__name__})")
        out.error = error_key(exc)
    return out


def run_chunker(mod, pieces: Sequence[bytes], chunk_size: int,
                ncols: Optional[int]) -> Outcome:
    ch = mod.Chunker(chunk_size, ncols) if ncols is not None else mod.Chunker(chunk_size)
    chunks: List[Tuple[bytes, int]] = []
    out = Outcome(rows=chunks)
    try:
        for piece in pieces:
            chunks.extend(ch.feed(piece))
        chunks.extend(ch.close())
    except Exception as exc:  # noqa: BLE001
        check_exception(exc, what=f"chunker ({mod.__name__})")
        out.error = error_key(exc)
    out.attrs = _attrs(ch)
    return out


# ---------------------------------------------------------------------------
# Invariants that hold within one implementation
# ---------------------------------------------------------------------------

def check_chunks(mod, stream: bytes, chunks: Sequence[Tuple[bytes, int]],
                 chunk_size: int, total_rows: int, header_size: int) -> None:
    """Every piece is a valid stream with the original header; tuples are preserved."""
    if not chunks:
        raise FuzzFailure("chunker: a valid stream gave no piece")
    header = stream[:header_size]
    body = []
    rows = 0
    for data, nrows in chunks:
        if not data.startswith(header):
            raise FuzzFailure("chunker: piece does not start with the original header")
        got = mod.scan(data)
        if got != (nrows, len(data)):
            raise FuzzFailure(f"chunker: piece says {nrows} rows, scan says {got}")
        # One tuple (or none: a header with a large extension) may exceed the size.
        if len(data) > chunk_size and nrows > 1:
            raise FuzzFailure(f"chunker: piece of {len(data)} bytes > {chunk_size} "
                              f"with {nrows} rows")
        body.append(data[header_size:-2])
        rows += nrows
    if rows != total_rows:
        raise FuzzFailure(f"chunker: {rows} rows in pieces, stream has {total_rows}")
    trailer_at = len(stream) - 2
    if b"".join(body) != stream[header_size:trailer_at]:
        raise FuzzFailure("chunker: tuples of the pieces differ from the stream's")


def check_roundtrip(mod, types: List[str], rows: List[tuple], what: str) -> None:
    """decode(encode(decode(x))) == decode(x) for whatever the decoder accepted."""
    try:
        enc = mod.Encoder(types)
        data = enc.header() + enc.encode(rows) + enc.trailer()
    except (TypeError, ValueError, DumpcodecError) as exc:
        if "NUL character" in str(exc):
            # The decoder is lenient with NUL in text (the server never sends it;
            # the encoder refuses it as the server would): not a round-trip bug.
            return
        raise FuzzFailure(f"{what}: encoder refuses decoded rows: {exc!r}; "
                          f"rows={rows!r:.2000}") from exc
    dec = mod.Decoder(types)
    try:
        again = dec.feed(data)
        dec.close()
    except CopyFormatError as exc:
        raise FuzzFailure(f"{what}: re-encoded rows do not decode: {exc}") from exc
    if not same_value(again, rows):
        raise FuzzFailure(f"{what}: round trip changed rows: {rows!r:.1000} -> "
                          f"{again!r:.1000}")


# ---------------------------------------------------------------------------
# Drivers: atheris, plain replay, and a small random mutator that needs nothing
# ---------------------------------------------------------------------------

def corpus_files(paths: Sequence[str]) -> List[str]:
    files: List[str] = []
    for p in paths:
        if os.path.isdir(p):
            for root, _dirs, names in os.walk(p):
                files.extend(os.path.join(root, n) for n in sorted(names)
                             if not n.startswith("."))
        else:
            files.append(p)
    return sorted(files)


def replay(one_input, paths: Sequence[str], verbose: bool = False) -> int:
    """Run every corpus file once; a finding raises with the file name."""
    files = corpus_files(paths)
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        try:
            one_input(data)
        except Exception as exc:
            raise FuzzFailure(f"{path}: {type(exc).__name__}: {exc}") from exc
        if verbose:
            print(path, "ok")
    return len(files)


def mutate(data: bytes, rnd: random.Random, pool: Sequence[bytes]) -> bytes:
    """A few libFuzzer-like mutations: flips, interesting words, cuts, splices."""
    buf = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(8)
        n = len(buf)
        if op == 0 and n:
            buf[rnd.randrange(n)] ^= 1 << rnd.randrange(8)
        elif op == 1 and n:
            buf[rnd.randrange(n)] = rnd.randrange(256)
        elif op == 2 and n >= 4:
            i = rnd.randrange(n - 3)
            word = rnd.choice((0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE,
                               0x40000000, 0x40000001, 16, 0xFFFF0000, 0x7FFF))
            buf[i:i + 4] = word.to_bytes(4, "big")
        elif op == 3 and n:
            del buf[rnd.randrange(n):]
        elif op == 4 and n:
            i = rnd.randrange(n)
            del buf[i:i + rnd.randint(1, 8)]
        elif op == 5:
            i = rnd.randrange(n + 1)
            buf[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
        elif op == 6 and pool:
            other = rnd.choice(pool)
            i, j = rnd.randrange(n + 1), rnd.randrange(len(other) + 1)
            buf[i:] = other[j:j + rnd.randint(1, 64)] + buf[i:]
        elif op == 7 and n >= 2:
            i = rnd.randrange(n - 1)
            buf[i:i + 2] = rnd.choice((b"\xff\xff", b"\x00\x00", b"\x7f\xff", b"\x80\x00",
                                       b"\x00\x01"))
    return bytes(buf)


def random_fuzz(one_input, paths: Sequence[str], seconds: float, seed: int = 0,
                max_runs: Optional[int] = None) -> int:
    """Mutate the corpus at random for ``seconds``; return the inputs run."""
    import time
    pool = []
    for p in corpus_files(paths):
        with open(p, "rb") as f:
            pool.append(f.read())
    if not pool:
        pool = [b"\0\0\0\0"]
    rnd = random.Random(seed)
    deadline = time.monotonic() + seconds
    runs = 0
    while time.monotonic() < deadline and (max_runs is None or runs < max_runs):
        data = mutate(rnd.choice(pool), rnd, pool)
        try:
            one_input(data)
        except Exception as exc:
            raise FuzzFailure(f"input {data!r:.3000}: {type(exc).__name__}: {exc}") from exc
        runs += 1
    return runs


def signature(exc: BaseException) -> str:
    """A finding's kind: the check that failed, without the input's details."""
    import re
    msg = str(exc).split("\n")[0]
    msg = re.sub(r"^\w+\([^)]*\)", "", msg)          # harness(...) prefix
    impl = re.match(r"^ \[([\w.]+)\]", msg)
    if impl:
        msg = msg[impl.end():]
    msg = msg.lstrip(": ")
    m = re.match(r"(unexpected \w+|[^:(]*)", msg)
    kind = m.group(1) if m else msg
    # the exception class inside the message, when there is one
    inner = re.search(r"(\w+(?:Error|Exception))\(", msg)
    return (f"{kind.strip()}{' / ' + inner.group(1) if inner else ''}"
            f"{' [' + impl.group(1) + ']' if impl else ''}")


def collecting(one_input, directory: str):
    """Wrap a harness so that findings are saved (one per kind) instead of fatal.

    For long runs while the code under test still has known bugs: each new kind of
    finding is written to ``directory`` as ``finding-NNN`` plus a ``.txt`` with the
    message, and fuzzing goes on.
    """
    import traceback
    os.makedirs(directory, exist_ok=True)
    seen: Dict[str, int] = {}

    def wrapped(data: bytes) -> None:
        try:
            one_input(data)
        except Exception as exc:  # noqa: BLE001 - every finding is recorded
            sig = signature(exc)
            seen[sig] = seen.get(sig, 0) + 1
            if seen[sig] == 1:
                n = len(seen)
                with open(os.path.join(directory, f"finding-{n:03d}"), "wb") as f:
                    f.write(data)
                with open(os.path.join(directory, f"finding-{n:03d}.txt"), "w") as f:
                    f.write(sig + "\n\n" + "".join(traceback.format_exception(exc)))
    return wrapped


def harness_main(one_input_factory, default_corpus: str) -> None:
    """The harnesses' command line without atheris.

    ``--replay [PATH...]``            run the corpus files once
    ``--random SECONDS [PATH...]``    the built-in random mutator

    (Anything else is libFuzzer/atheris arguments, handled by ``atheris_boot``.)
    """
    import sys
    argv = sys.argv[1:]
    one_input = one_input_factory()
    if argv[0] == "--replay":
        n = replay(one_input, argv[1:] or [default_corpus])
        print(f"replayed {n} inputs: ok")
    else:
        secs = float(argv[1])
        n = random_fuzz(one_input, argv[2:] or [default_corpus], secs,
                        seed=int(os.environ.get("FUZZ_SEED", "0")))
        print(f"random mutator: {n} inputs in {secs:g} s: ok")
