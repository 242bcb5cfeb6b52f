"""Fuzz harness: the COPY BINARY Decoder, raw and typed, C against Python.

Input: 4-byte control prefix + stream (see fuzzlib).  Mode bits of byte 0:

    bit 0  raw=True even when the schema has types
    bit 1  re-encode what was decoded and decode it again (must give the same rows)
    bit 2  pass column names (they appear in error messages, quotes included)

Each input is decoded by every implementation with the same split, and the results
must agree exactly (rows, counters, error class, message, offset, row, column).  The
Python twin also decodes the whole stream in one piece: an error must not depend on
how the stream was split, and a good stream gives the same rows.  In raw mode the
Scanner must accept exactly the streams the decoder accepts, with the same row count.

Run:  python fuzz/fuzz_decoder.py -max_total_time=60 fuzz/corpus/decoder
      python fuzz/fuzz_decoder.py --replay            (corpus once, no atheris)
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

DEFAULT_CORPUS = os.path.join(_HERE, "corpus", "decoder")
NAMES_POOL = ["id", 'we"ird', "créé", "a b", "x"]


def names_for(types):
    return [NAMES_POOL[i % len(NAMES_POOL)] + ("" if i < len(NAMES_POOL) else str(i))
            for i in range(len(types))]


def make_one_input(impls=None):
    impls = impls or fuzzlib.load_impls()
    first = next(iter(impls.values()))

    def one_input(data: bytes) -> None:
        mode, sidx, seed, stream = fuzzlib.unpack_input(data)
        types = fuzzlib.SCHEMAS[sidx]
        raw = bool(mode & 1) or types is None
        names = names_for(types) if (mode & 4 and types) else None
        pieces = fuzzlib.split(stream, seed)
        what = f"decoder(schema={sidx}, raw={raw}, names={bool(names)}, seed={seed})"
        outcomes = {}
        for name, mod in impls.items():
            outcomes[name] = fuzzlib.run_decoder(mod, pieces, types, raw, what, names)
        supported = {n: o for n, o in outcomes.items() if o is not None}
        if len(supported) != len(outcomes) and supported:
            raise fuzzlib.FuzzFailure(
                f"{what}: schema {types} accepted by {sorted(supported)} only")
        if not supported:
            return
        fuzzlib.compare(supported, what)
        ref = next(iter(supported.values()))
        # Split invariance (the Python twin is the oracle for it; C gets it by the
        # comparison above on the split input).
        if seed != 0:
            whole = fuzzlib.run_decoder(first, [stream], types, raw, what, names)
            if whole.error != ref.error:
                raise fuzzlib.FuzzFailure(f"{what}: error depends on the split: "
                                          f"{ref.error!r} vs whole {whole.error!r}")
            if ref.ok and not (fuzzlib.same_value(whole.rows, ref.rows)
                               and whole.attrs == ref.attrs):
                raise fuzzlib.FuzzFailure(f"{what}: rows depend on the split")
        if raw:
            ncols = len(types) if types else None
            for name, mod in impls.items():
                sc = fuzzlib.run_scanner(mod, pieces, ncols)
                if sc.ok != ref.ok or (ref.ok and sc.rows != len(ref.rows)):
                    raise fuzzlib.FuzzFailure(
                        f"{what}: scanner ({name}) and raw decoder disagree: scanner "
                        f"{sc.rows} rows {sc.error!r}, decoder "
                        f"{len(ref.rows)} rows {ref.error!r}")
                if ref.ok and sc.attrs != ref.attrs:
                    raise fuzzlib.FuzzFailure(f"{what}: scanner counters {sc.attrs} "
                                              f"!= decoder {ref.attrs}")
        elif ref.ok and mode & 2:
            for name, mod in impls.items():
                fuzzlib.check_roundtrip(mod, types, ref.rows, f"{what} [{name}]")

    return one_input


if __name__ == "__main__":
    if _ATHERIS:
        import atheris_boot
        atheris_boot.run(globals(), ["dumpcodec.copy.types"])
    else:
        fuzzlib.harness_main(make_one_input, DEFAULT_CORPUS)
