"""The codec switch under its first name: everything here is :mod:`dumpcodec.copy`.

Kept because ``from dumpcodec import codec`` / ``dumpcodec.codec.Decoder`` are public;
new code imports :mod:`dumpcodec.copy`.
"""
from .copy import *  # noqa: F401,F403  (the switch's API, IMPL included)
from .copy import API, __all__  # noqa: F401
