"""Start a harness under atheris, importing dumpcodec only once libFuzzer is loaded.

Why lazily: ``scripts/asan.sh cov`` builds the Cython core with SanitizerCoverage
(``-fsanitize-coverage=inline-8bit-counters,pc-table,trace-cmp``) so that libFuzzer
sees the C code's edges and comparisons too.  Such a module needs libFuzzer's
``__sanitizer_cov_*`` symbols when it is loaded; atheris loads its libFuzzer core in
``Fuzz()``, so dumpcodec is imported on the first input, with RTLD_GLOBAL set for the
core, inside ``atheris.instrument_imports`` (the Python modules are instrumented as
before).  With a normal build of the core nothing changes but the import moment.

Imports nothing from dumpcodec at module level.
"""
import importlib
import os
import sys


def run(harness_globals: dict, extra_modules=()) -> None:
    """Setup and Fuzz the harness whose globals are given (it has make_one_input)."""
    import atheris
    # libFuzzer's core (loaded by Fuzz()) must export its symbols to the C extension
    sys.setdlopenflags(os.RTLD_NOW | os.RTLD_GLOBAL)
    state = {}

    def one_input(data: bytes) -> None:
        fn = state.get("fn")
        if fn is None:
            with atheris.instrument_imports(include=["dumpcodec"]):
                import fuzzlib
                for name in extra_modules:
                    try:
                        importlib.import_module(name)
                    except ImportError:
                        pass
            harness_globals["fuzzlib"] = fuzzlib
            fn = harness_globals["make_one_input"]()
            collect = os.environ.get("FUZZ_COLLECT")
            if collect:
                fn = fuzzlib.collecting(fn, collect)
            impls = fuzzlib.load_impls() if "load_impls" in dir(fuzzlib) else {}
            print(f"fuzz: codecs {sorted(impls)}; C core "
                  f"{getattr(impls.get('c'), '__file__', 'not loaded')}", file=sys.stderr)
            state["fn"] = fn
        fn(data)

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
