"""Fuzz harness: the framing Scanner, ``scan()`` and the Chunker, C against Python.

Input: 4-byte control prefix + stream (see fuzzlib), read differently from the
decoder's:

    byte 0     bit 0: pass ncols = byte 0 >> 4 (0-15) instead of None
    byte 1     chunk size = 21 + 8 * byte 1 (21 is the smallest allowed)
    bytes 2-3  split seed

Checks: every implementation gives the same counts, counters, pieces and errors;
the result does not depend on the split; ``scan()`` accepts exactly what the Scanner
accepts; the Chunker accepts exactly what the Scanner accepts, gives the same error,
and its pieces are valid streams with the original header, within the chunk size
(or one tuple alone), whose tuples put together are the original tuples.

Run:  python fuzz/fuzz_scanner.py -max_total_time=60 fuzz/corpus/scanner
      python fuzz/fuzz_scanner.py --replay
"""
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

# Under atheris, dumpcodec is imported on the first input (see atheris_boot).
_ATHERIS = __name__ == "__main__" and not (len(sys.argv) > 1
                                           and sys.argv[1] in ("--replay", "--random"))
if not _ATHERIS:
    import fuzzlib

DEFAULT_CORPUS = os.path.join(_HERE, "corpus", "scanner")


def make_one_input(impls=None):
    impls = impls or fuzzlib.load_impls()
    first = next(iter(impls.values()))

    def one_input(data: bytes) -> None:
        head = data[:fuzzlib.PREFIX_SIZE].ljust(fuzzlib.PREFIX_SIZE, b"\0")
        stream = data[fuzzlib.PREFIX_SIZE:]
        ncols = (head[0] >> 4) if head[0] & 1 else None
        chunk_size = 21 + 8 * head[1]
        seed = (head[2] << 8) | head[3]
        pieces = fuzzlib.split(stream, seed)
        what = f"scanner(ncols={ncols}, chunk={chunk_size}, seed={seed})"

        scans = {n: fuzzlib.run_scanner(m, pieces, ncols) for n, m in impls.items()}
        fuzzlib.compare(scans, what)
        ref = next(iter(scans.values()))
        if seed != 0:
            whole = fuzzlib.run_scanner(first, [stream], ncols)
            if whole.error != ref.error or (ref.ok and whole.attrs != ref.attrs):
                raise fuzzlib.FuzzFailure(f"{what}: result depends on the split: "
                                          f"{ref.error!r}/{ref.attrs} vs whole "
                                          f"{whole.error!r}/{whole.attrs}")
        if ncols is None:
            whole_scans = {n: fuzzlib.run_scan(m, stream) for n, m in impls.items()}
            fuzzlib.compare(whole_scans, what + " scan()")
            s = next(iter(whole_scans.values()))
            if s.ok != ref.ok or (s.ok and s.rows != (ref.rows, len(stream))):
                raise fuzzlib.FuzzFailure(f"{what}: scan() {s.rows} {s.error!r} vs "
                                          f"Scanner {ref.rows} {ref.error!r}")

        chunks = {n: fuzzlib.run_chunker(m, pieces, chunk_size, ncols)
                  for n, m in impls.items()}
        fuzzlib.compare(chunks, what + " chunker")
        ch = next(iter(chunks.values()))
        if ch.error != ref.error:
            raise fuzzlib.FuzzFailure(f"{what}: chunker error {ch.error!r} != "
                                      f"scanner error {ref.error!r}")
        if ch.ok:
            for name, mod in impls.items():
                fuzzlib.check_chunks(mod, stream, ch.rows, chunk_size, ref.rows,
                                     ref.attrs["header_size"])

    return one_input


if __name__ == "__main__":
    if _ATHERIS:
        import atheris_boot
        atheris_boot.run(globals(), [])
    else:
        fuzzlib.harness_main(make_one_input, DEFAULT_CORPUS)
