"""The fuzz harnesses in CI: corpus replay, short atheris runs, Hypothesis fuzzing.

The harnesses live in fuzz/ (see fuzz/README.md); their checks are the oracle here:
the C core and the pure-Python twin must give the same rows, counters and errors on
every input, results must not depend on how a stream is split, only the documented
error classes may escape, and the archive reader must report (never crash on)
mutated archives.

- every seed corpus file is replayed through its harness;
- each harness runs for a few seconds under atheris (coverage-guided), in a
  subprocess because libFuzzer owns the process;
- Hypothesis mutates corpus streams (bit flips, interesting words, cuts, inserts,
  splices) and feeds them in random splits to the same checks, shrinking any finding.
"""
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FUZZ = os.path.join(ROOT, "fuzz")
sys.path.insert(0, FUZZ)

import fuzzlib  # noqa: E402
import fuzz_archive  # noqa: E402
import fuzz_decoder  # noqa: E402
import fuzz_scanner  # noqa: E402

HARNESSES = {"decoder": fuzz_decoder, "scanner": fuzz_scanner, "archive": fuzz_archive}
ATHERIS_SECONDS = int(os.environ.get("FUZZ_SMOKE_SECONDS", "4"))
EXAMPLES = int(os.environ.get("FUZZ_HYPOTHESIS_EXAMPLES", "300"))


@pytest.fixture(scope="module")
def impls():
    found = fuzzlib.load_impls()
    if os.environ.get("DUMPCODEC_IMPL") == "c":
        # The differential checks are the point: the C core must be among them.
        assert "c" in found, "DUMPCODEC_IMPL=c but the C core is not among the codecs"
    return found


def corpus(name):
    files = fuzzlib.corpus_files([os.path.join(FUZZ, "corpus", name)])
    out = []
    for path in files:
        with open(path, "rb") as f:
            out.append(f.read())
    return out


@pytest.mark.parametrize("name", sorted(HARNESSES))
def test_corpus_replays_clean(name, impls):
    one_input = HARNESSES[name].make_one_input(impls)
    n = fuzzlib.replay(one_input, [os.path.join(FUZZ, "corpus", name)])
    assert n >= 10


@pytest.mark.parametrize("name", sorted(HARNESSES))
def test_atheris_short_run(name, tmp_path, impls):
    pytest.importorskip("atheris", reason="atheris is in the fuzz extra")
    work = tmp_path / "corpus"
    work.mkdir()
    env = dict(os.environ, FUZZ_IMPLS=",".join(impls))
    proc = subprocess.run(
        [sys.executable, os.path.join(FUZZ, f"fuzz_{name}.py"),
         f"-max_total_time={ATHERIS_SECONDS}", "-timeout=20", "-rss_limit_mb=2048",
         "-print_final_stats=1", f"-artifact_prefix={tmp_path}/", str(work),
         os.path.join(FUZZ, "corpus", name)],
        capture_output=True, text=True, timeout=ATHERIS_SECONDS + 120, env=env)
    tail = proc.stderr[-4000:]
    assert proc.returncode == 0, f"atheris found something:\n{tail}"
    runs = [line for line in proc.stderr.splitlines()
            if line.startswith("stat::number_of_executed_units")]
    assert runs and int(runs[0].split(":")[-1]) > 0, tail


# ---------------------------------------------------------------------------
# Hypothesis: mutated streams through the same checks
# ---------------------------------------------------------------------------

WORDS = [0, 1, 2, 4, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
         0xFFFFFFFE, 0x40000000, 0x40000001, 0x00010000]

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 16), st.integers(0, 7)),
    st.tuples(st.just("byte"), st.integers(0, 1 << 16), st.integers(0, 255)),
    st.tuples(st.just("word"), st.integers(0, 1 << 16), st.sampled_from(WORDS)),
    st.tuples(st.just("cut"), st.integers(0, 1 << 16), st.just(0)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 16), st.integers(1, 16)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 16), st.binary(min_size=1, max_size=8)),
)


def apply(stream: bytes, ops) -> bytes:
    buf = bytearray(stream)
    for op, pos, arg in ops:
        n = len(buf)
        i = pos % (n + 1)
        if op == "flip" and n:
            buf[i % n] ^= 1 << arg
        elif op == "byte" and n:
            buf[i % n] = arg
        elif op == "word" and n >= 4:
            j = i % (n - 3)
            buf[j:j + 4] = arg.to_bytes(4, "big")
        elif op == "cut":
            del buf[i:]
        elif op == "delete":
            del buf[i:i + arg]
        elif op == "insert":
            buf[i:i] = arg
    return bytes(buf)


DECODER_SEEDS = corpus("decoder")
SCANNER_SEEDS = corpus("scanner")
ARCHIVE_SEEDS = corpus("archive")
fuzz_settings = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                         suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.data_too_large])


@fuzz_settings
@given(seed=st.sampled_from(DECODER_SEEDS), ops=st.lists(mutation, max_size=5),
       mode=st.integers(0, 7), split_seed=st.integers(0, 0xFFFF))
def test_decoder_mutated_streams_c_vs_python(impls, seed, ops, mode, split_seed):
    _, sidx, _, stream = fuzzlib.unpack_input(seed)
    data = fuzzlib.pack_input(apply(stream, ops), mode, sidx, split_seed)
    fuzz_decoder.make_one_input(impls)(data)


@fuzz_settings
@given(seed=st.sampled_from(SCANNER_SEEDS), ops=st.lists(mutation, max_size=5),
       ncols=st.one_of(st.none(), st.integers(0, 15)), chunk=st.integers(0, 255),
       split_seed=st.integers(0, 0xFFFF))
def test_scanner_chunker_mutated_streams_c_vs_python(impls, seed, ops, ncols, chunk,
                                                      split_seed):
    stream = seed[fuzzlib.PREFIX_SIZE:]
    mode = 0 if ncols is None else (1 | (ncols << 4))
    data = bytes([mode, chunk, split_seed >> 8, split_seed & 0xFF]) + apply(stream, ops)
    fuzz_scanner.make_one_input(impls)(data)


@settings(max_examples=max(EXAMPLES // 3, 20), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(seed=st.sampled_from(ARCHIVE_SEEDS), ops=st.lists(mutation, max_size=4),
       mode=st.integers(0, 15))
def test_archive_reader_mutated_archives(seed, ops, mode):
    fuzz_archive.one_input(fuzz_archive.pack(apply(seed[1:], ops), mode))
