"""The type codecs under their first name: see :mod:`dumpcodec.copy.types`.

Kept because ``dumpcodec.pgtypes`` is public (``resolve``, ``TypeRegistry``, the
``CODEC_*`` ids, the message texts and every ``decode_x``/``encode_x`` it had); new
code imports :mod:`dumpcodec.copy.types`.
"""
from .copy.encodings import *  # noqa: F401,F403
from .copy.types import *  # noqa: F401,F403
from .copy.types import __all__  # noqa: F401
from .copy.types.core import *  # noqa: F401,F403
from .copy.types.datetime import *  # noqa: F401,F403
from .copy.types.json import *  # noqa: F401,F403
from .copy.types.misc import *  # noqa: F401,F403
from .copy.types.network import *  # noqa: F401,F403
from .copy.types.numeric import *  # noqa: F401,F403
from .copy.types.text import *  # noqa: F401,F403
