"""Build the Cython core ``src/_fastcopy.pyx`` as ``dumpcodec._fastcopy``.

Everything else (metadata, packages, extras) lives in pyproject.toml.
Set DUMPCODEC_ASAN=1 to build the extension under AddressSanitizer (see docs/RELIABILITY.md).
"""
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

extra_compile_args = ["-O2"]
extra_link_args = []
if os.environ.get("DUMPCODEC_ASAN"):
    extra_compile_args = ["-O1", "-g", "-fsanitize=address", "-fno-omit-frame-pointer"]
    extra_link_args = ["-fsanitize=address"]

exts = [
    Extension(
        "dumpcodec._fastcopy",
        sources=["src/_fastcopy.pyx"],
        extra_compile_args=extra_compile_args,
        extra_link_args=extra_link_args,
    ),
    # libpq is not linked: dumpcodec/pump.py hands it psycopg's own libpq at run time
    Extension(
        "dumpcodec._pgpump",
        sources=["src/_pgpump.pyx"],
        extra_compile_args=extra_compile_args,
        extra_link_args=extra_link_args,
    ),
]

setup(
    ext_modules=cythonize(
        exts,
        language_level=3,
        compiler_directives={
            # Bounds are checked by hand on every read of the input buffer; these
            # directives only drop checks on our own, already-validated indexes.
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
)
