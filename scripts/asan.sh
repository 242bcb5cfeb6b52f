#!/usr/bin/env bash
# Build the Cython core under AddressSanitizer and run the codec tests and the fuzz
# corpus under it.
#
#   scripts/asan.sh                 build, codec tests, corpus replay, 60 s random fuzzing
#   scripts/asan.sh build           build only
#   scripts/asan.sh fuzz SECONDS    build, then run the atheris harnesses under ASAN
#   scripts/asan.sh cov SECONDS     no ASAN: build the core with SanitizerCoverage
#                                   (clang) into build/fuzzcov and run the atheris
#                                   harnesses coverage-guided on the C code as well
#
# Note on "fuzz": atheris's wheel has no ASAN+libFuzzer runtime (asan_with_fuzzer.so),
# so with the plain ASAN runtime preloaded libFuzzer's coverage feedback is lost (it
# says so: "Coverage symbols are being provided by a library other than libFuzzer");
# it then mutates blindly, like the built-in --random mutator of the default run.
# Coverage-guided runs are done without ASAN (fuzz/README.md); ASAN checks the corpus
# they grew (pass the directories to --replay) and random mutations of it.
#
# The ASAN build goes to $ASAN_DIR (default build/asan), never over the in-place
# src/dumpcodec/*.so: the Python sources are copied next to the ASAN-built
# extensions in $ASAN_DIR/pkg, which goes first on PYTHONPATH (the editable install
# only appends src/ to sys.path), so `import dumpcodec._fastcopy` loads the ASAN one.
# The script checks that it did.
#
# Compiler: clang with Debian's libclang-rt (apt-get install -y clang
# libclang-rt-14-dev); without clang, gcc with its libasan.  The ASAN runtime is
# LD_PRELOADed because python itself is not built with ASAN.  Leak detection is off
# (the interpreter keeps memory on purpose until exit).  PYTHONMALLOC=malloc puts
# every Python object in its own malloc block so that small overreads are caught.
#
# Environment: PYTHON (default /work/venv/bin/python, else python3), ASAN_DIR,
# ASAN_FUZZ_SECONDS (random-mutator seconds in the default run, default 60),
# ASAN_EXTRA_CORPUS (a directory with decoder/ and scanner/ subdirectories of inputs
# grown by coverage-guided runs, replayed as well).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-$( [ -x /work/venv/bin/python ] && echo /work/venv/bin/python || command -v python3 )}
ASAN_DIR=${ASAN_DIR:-$ROOT/build/asan}
what=${1:-all}

if command -v clang >/dev/null; then
    CC=clang
    ASAN_RT=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
    if [ ! -f "$ASAN_RT" ]; then
        echo "clang has no ASAN runtime: apt-get install -y libclang-rt-14-dev (or the version of your clang)" >&2
        exit 2
    fi
else
    CC=gcc
    ASAN_RT=$(gcc -print-file-name=libasan.so)
fi
echo "asan: compiler $CC, runtime $ASAN_RT, output $ASAN_DIR"

# --- cov: coverage-guided fuzzing of the C code (no ASAN) ---------------------------
if [ "$what" = cov ]; then
    [ "$CC" = clang ] || { echo "cov needs clang (SanitizerCoverage)" >&2; exit 2; }
    secs=${2:-300}
    COV_DIR=${COV_DIR:-$ROOT/build/fuzzcov}
    rm -rf "$COV_DIR/lib" "$COV_DIR/pkg"
    mkdir -p "$COV_DIR/tmp" "$COV_DIR/lib" "$COV_DIR/pkg"
    # inline counters + PC table + comparison tracing: what libFuzzer reads; no
    # stack-depth tracing (atheris's core does not export its TLS symbol)
    CC=clang LDSHARED="clang -shared" \
        CFLAGS="-fsanitize-coverage=inline-8bit-counters,pc-table,trace-cmp -O1 -g" \
        "$PYTHON" setup.py -q build_ext --build-lib "$COV_DIR/lib" --build-temp "$COV_DIR/tmp" --force
    (cd src && find dumpcodec -name '*.py' -exec cp --parents {} "$COV_DIR/pkg" \;)
    cp -r "$COV_DIR/lib/dumpcodec/." "$COV_DIR/pkg/dumpcodec/"
    # the instrumented core loads only once libFuzzer is (fuzz/atheris_boot.py); until
    # then the codec switch must not try to import it
    export PYTHONPATH="$COV_DIR/pkg:$ROOT/fuzz${PYTHONPATH:+:$PYTHONPATH}"
    export DUMPCODEC_IMPL=python FUZZ_IMPLS=python,c
    for h in ${COV_HARNESSES:-decoder scanner}; do
        work="$COV_DIR/corpus-$h"; mkdir -p "$work"
        echo "=== atheris $h with C coverage, $secs s"
        nice "$PYTHON" fuzz/fuzz_$h.py -max_total_time="$secs" -timeout=20 \
            -rss_limit_mb=4096 -print_final_stats=1 "$work" "fuzz/corpus/$h"
    done
    exit 0
fi

# --- build ---------------------------------------------------------------------
rm -rf "$ASAN_DIR/lib" "$ASAN_DIR/pkg"
mkdir -p "$ASAN_DIR/tmp" "$ASAN_DIR/lib" "$ASAN_DIR/pkg"
CC=$CC LDSHARED="$CC -shared" DUMPCODEC_ASAN=1 \
    "$PYTHON" setup.py -q build_ext --build-lib "$ASAN_DIR/lib" --build-temp "$ASAN_DIR/tmp" --force
# Python sources (no in-place .so) + the ASAN extensions.
(cd src && find dumpcodec -name '*.py' -exec cp --parents {} "$ASAN_DIR/pkg" \;)
cp -r "$ASAN_DIR/lib/dumpcodec/." "$ASAN_DIR/pkg/dumpcodec/"

export LD_PRELOAD="$ASAN_RT"
# Every Python object through malloc, so that ASAN sees the bounds of small bytes
# objects too (pymalloc would hide an overread inside its arenas).
export PYTHONMALLOC=malloc
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:allocator_may_return_null=1}
export PYTHONPATH="$ASAN_DIR/pkg:$ROOT/fuzz${PYTHONPATH:+:$PYTHONPATH}"
export DUMPCODEC_IMPL=c
export FUZZ_IMPLS=python,c

"$PYTHON" - <<'PY'
import dumpcodec._fastcopy as m, os, sys
path = m.__file__
if not path.startswith(os.environ["PYTHONPATH"].split(":")[0]):
    sys.exit(f"asan: wrong _fastcopy imported: {path}")
syms = open(path, "rb").read()
if b"__asan_" not in syms:
    sys.exit(f"asan: {path} is not instrumented")
print("asan: ASAN-instrumented core:", path)
PY
[ "$what" = build ] && exit 0

if [ "$what" = fuzz ]; then
    secs=${2:-60}
    for h in decoder scanner; do
        work="$ASAN_DIR/corpus-$h"; mkdir -p "$work"
        echo "=== atheris $h under ASAN, $secs s"
        nice "$PYTHON" fuzz/fuzz_$h.py -max_total_time="$secs" -timeout=10 \
            -rss_limit_mb=4096 -print_final_stats=1 "$work" "fuzz/corpus/$h"
    done
    exit 0
fi

# --- codec tests, corpus, random mutations ---------------------------------------
status=0
tests=$(ls tests/test_codec*.py tests/test_fastcopy*.py tests/test_fuzz_regressions.py 2>/dev/null || true)
if [ -n "$tests" ]; then
    echo "=== codec tests under ASAN: $tests"
    # a failing test is reported at the end; the corpus still runs under ASAN
    HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-ci} "$PYTHON" -m pytest -q -p no:cacheprovider $tests \
        || status=1
fi
for h in decoder scanner; do
    echo "=== corpus replay ($h) under ASAN"
    "$PYTHON" fuzz/fuzz_$h.py --replay fuzz/corpus/$h ${ASAN_EXTRA_CORPUS:+$ASAN_EXTRA_CORPUS/$h}
    echo "=== random mutations ($h) under ASAN, ${ASAN_FUZZ_SECONDS:-60} s"
    nice "$PYTHON" fuzz/fuzz_$h.py --random "${ASAN_FUZZ_SECONDS:-60}" fuzz/corpus/$h
done
if [ $status -ne 0 ]; then
    echo "asan: no sanitizer report, but some tests failed (see above)"
    exit 1
fi
echo "asan: all clean"
