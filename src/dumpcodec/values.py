"""The stand-in value objects under their first name: see :mod:`dumpcodec.copy.values`.

Kept because ``dumpcodec.values`` is public; new code imports
:mod:`dumpcodec.copy.values`.
"""
from .copy.values import *  # noqa: F401,F403
from .copy.values import __all__  # noqa: F401
