#!/usr/bin/env bash
# Build the Cython core under AddressSanitizer (and/or with SanitizerCoverage) and run
# the codec tests, the fuzz corpus and the fuzzers against it.
#
#   scripts/asan.sh               ASAN build; codec tests, corpus replay, random mutations
#   scripts/asan.sh build         ASAN build only
#   scripts/asan.sh fuzz [SECS]   ASAN + coverage build; the atheris harnesses,
#                                 coverage-guided on the C code, under ASAN (slow: ~50/s)
#   scripts/asan.sh cov [SECS]    coverage build without ASAN; the atheris harnesses,
#                                 coverage-guided on the C code (fast: ~500/s)
#
# Builds go to build/asan, build/asan-fuzz and build/fuzzcov, never over the in-place
# src/dumpcodec/*.so: the Python sources (subpackages such as dumpcodec.copy too, and
# the _fastcopy.pyi stub that tests/codec/test_codec_api.py reads) are copied next to the
# built extensions in <dir>/pkg, which goes first on PYTHONPATH (the editable install
# only appends src/ to sys.path), so `import dumpcodec._fastcopy` loads the built one;
# the default run checks that it did and that it is instrumented.
#
# Compiler: clang with Debian's libclang-rt (apt-get install -y clang
# libclang-rt-14-dev); without clang, gcc with its libasan (default mode only).  The
# ASAN runtime is LD_PRELOADed because python itself is not built with ASAN; leak
# detection is off (the interpreter keeps memory until exit).  The default mode also
# sets PYTHONMALLOC=malloc so that every Python object is its own malloc block and a
# small overread is caught (too slow for the fuzz mode, which goes without).
#
# Coverage of the C code: the core is compiled with
# -fsanitize-coverage=inline-8bit-counters,pc-table,trace-cmp and needs libFuzzer's
# __sanitizer_cov_* symbols when it loads; fuzz/atheris_boot.py imports dumpcodec only
# once atheris has loaded its libFuzzer (with RTLD_GLOBAL).  Under ASAN, the ASAN
# runtime's weak no-op versions of those symbols would win and atheris's wheel has no
# combined ASAN+libFuzzer runtime, so the fuzz mode links clang's libFuzzer
# (libclang_rt.fuzzer_no_main) into a small shared library preloaded before the ASAN
# runtime: atheris then uses that libFuzzer (its core_without_libfuzzer), and the
# counters reach it.
#
# Environment: PYTHON (default /work/venv/bin/python, else python3),
# ASAN_FUZZ_SECONDS (random-mutator seconds per harness in the default run, 60),
# ASAN_EXTRA_CORPUS (directory with decoder/ and scanner/ inputs grown elsewhere,
# replayed as well), FUZZ_HARNESSES (default "decoder scanner").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-$( [ -x /work/venv/bin/python ] && echo /work/venv/bin/python || command -v python3 )}
what=${1:-all}
HARNESSES=${FUZZ_HARNESSES:-decoder scanner}
COVERAGE="-fsanitize-coverage=inline-8bit-counters,pc-table,trace-cmp"

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
    if [ "$what" = fuzz ] || [ "$what" = cov ]; then
        echo "'$what' needs clang (SanitizerCoverage, libFuzzer)" >&2
        exit 2
    fi
fi

# build DIR CFLAGS LDFLAGS: the extensions into DIR/lib, Python sources + them in DIR/pkg
build() {
    local dir=$1 cflags=$2 ldflags=$3
    echo "asan: building with $CC $cflags into $dir"
    rm -rf "$dir/lib" "$dir/pkg"
    mkdir -p "$dir/tmp" "$dir/lib" "$dir/pkg"
    CC=$CC LDSHARED="$CC -shared" CFLAGS="$cflags" LDFLAGS="$ldflags" \
        "$PYTHON" setup.py -q build_ext --build-lib "$dir/lib" --build-temp "$dir/tmp" --force
    (cd src && find dumpcodec \( -name '*.py' -o -name '*.pyi' \) \
        -exec cp --parents {} "$dir/pkg" \;)
    cp -r "$dir/lib/dumpcodec/." "$dir/pkg/dumpcodec/"
}

# run_atheris DIR SECS: the harnesses, with corpora growing in DIR/corpus-NAME
run_atheris() {
    local dir=$1 secs=$2
    export PYTHONPATH="$dir/pkg:$ROOT/fuzz${PYTHONPATH:+:$PYTHONPATH}"
    # the instrumented core may load only after libFuzzer (fuzz/atheris_boot.py): the
    # codec switch must not import it first; the harnesses import both codecs directly
    export DUMPCODEC_IMPL=python FUZZ_IMPLS=python,c
    for h in $HARNESSES; do
        local work="$dir/corpus-$h"
        mkdir -p "$work"
        echo "=== atheris $h ($what), $secs s"
        nice "$PYTHON" fuzz/fuzz_$h.py -max_total_time="$secs" -timeout=30 \
            -rss_limit_mb=6144 -print_final_stats=1 "$work" "fuzz/corpus/$h"
    done
}

case "$what" in
cov)
    build "$ROOT/build/fuzzcov" "$COVERAGE -O1 -g" ""
    run_atheris "$ROOT/build/fuzzcov" "${2:-300}"
    exit 0
    ;;
fuzz)
    dir=$ROOT/build/asan-fuzz
    build "$dir" "-fsanitize=address -fno-omit-frame-pointer $COVERAGE -O1 -g" "-fsanitize=address"
    fuzzer_rt=$(clang -print-file-name=libclang_rt.fuzzer_no_main-x86_64.a)
    clang++ -shared -o "$dir/libfuzzer_nomain.so" -Wl,--whole-archive "$fuzzer_rt" \
        -Wl,--no-whole-archive -lpthread
    # libFuzzer first, so that its (strong) coverage symbols win over ASAN's weak ones
    export LD_PRELOAD="$dir/libfuzzer_nomain.so $ASAN_RT"
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:verify_asan_link_order=0:allocator_may_return_null=1}
    run_atheris "$dir" "${2:-300}"
    exit 0
    ;;
all|build)
    ;;
*)
    echo "usage: scripts/asan.sh [build|fuzz [SECONDS]|cov [SECONDS]]" >&2
    exit 2
    ;;
esac

# --- default: ASAN build, tests, corpus, random mutations ----------------------------
ASAN_DIR=$ROOT/build/asan
if [ "$CC" = clang ]; then
    build "$ASAN_DIR" "-fsanitize=address -fno-omit-frame-pointer -O1 -g" "-fsanitize=address"
else
    # setup.py adds -fsanitize=address under DUMPCODEC_ASAN=1
    DUMPCODEC_ASAN=1 build "$ASAN_DIR" "" ""
fi

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
if b"__asan_" not in open(path, "rb").read():
    sys.exit(f"asan: {path} is not instrumented")
print("asan: ASAN-instrumented core:", path)
PY
[ "$what" = build ] && exit 0

status=0
tests=$(ls tests/codec/test_codec*.py tests/hostile/test_codec_malformed.py tests/hostile/test_fastcopy_safety.py tests/hostile/test_fuzz_regressions.py 2>/dev/null || true)
if [ -n "$tests" ]; then
    echo "=== codec tests under ASAN: $tests"
    # a failing test is reported at the end; the corpus still runs under ASAN (an
    # ASAN report aborts the run and shows "ERROR: AddressSanitizer" above)
    HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-ci} "$PYTHON" -m pytest -q -p no:cacheprovider $tests \
        || status=1
fi
for h in $HARNESSES; do
    echo "=== corpus replay ($h) under ASAN"
    "$PYTHON" fuzz/fuzz_$h.py --replay fuzz/corpus/$h ${ASAN_EXTRA_CORPUS:+$ASAN_EXTRA_CORPUS/$h}
    echo "=== random mutations ($h) under ASAN, ${ASAN_FUZZ_SECONDS:-60} s"
    nice "$PYTHON" fuzz/fuzz_$h.py --random "${ASAN_FUZZ_SECONDS:-60}" fuzz/corpus/$h
done
if [ $status -ne 0 ]; then
    echo "asan: some tests failed (see above)"
    exit 1
fi
echo "asan: all clean"
