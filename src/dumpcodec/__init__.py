"""dumpcodec: dump PostgreSQL tables into streamable archives and restore them.

The COPY BINARY codec has two implementations with one API: the Cython core
(``dumpcodec._fastcopy``) and the pure-Python twin (``dumpcodec._purecopy``).
``DUMPCODEC_IMPL=c|python`` chooses; unset, the C core is used when it is built.
``dumpcodec.IMPL`` says which one is active.
"""
from .codec import IMPL  # noqa: F401  (re-exported)

__version__ = "0.1.0"
