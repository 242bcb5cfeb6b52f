"""The ``dumpcodec`` command line: ``create | ls | verify | cat | load | demo | bench``.

Each group of subcommands lives in its own module with a ``register(subparsers)``
function that adds its parsers and sets ``func`` (called with the parsed args,
returning an exit code).  Exit codes: 0 all good, 1 some tables failed, 2 usage or
input errors.  Errors print as one line on stderr, with a traceback only under
``--debug`` (which also shows the library's log, the ``dumpcodec`` logger, on
stderr).  With ``--json`` (create, load, verify), an error that stops the command
is a JSON report too (``ok`` false, ``error`` the message: docs/JSON.md).
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import signal
import sys
from typing import List, Optional

from ..errors import DumpcodecError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# module name -> imported lazily so that one broken group cannot break the others
_GROUPS = ["archive_cmds", "db_cmds", "demo", "bench"]


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__
    from ..copy import IMPL
    parser = argparse.ArgumentParser(
        prog="dumpcodec",
        description="Dump PostgreSQL tables into streamable archives and restore them.",
        epilog="Run 'dumpcodec COMMAND --help' for each command's options and examples.",
    )
    parser.add_argument("--version", action="version",
                        version=f"dumpcodec {__version__} (codec: {IMPL})")
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in _GROUPS:
        try:
            mod = importlib.import_module(f"{__name__}.{group}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{group}":
                raise
            continue
        mod.register(sub)
    return parser


STORAGE_OPTION_HELP = (
    "for an archive at a URL (s3://bucket/key, gs://, az://, any fsspec URL): an "
    "option of its filesystem, KEY=VALUE (repeatable; VALUE read as JSON where it is, "
    "dotted keys nest), e.g. --storage-option endpoint_url=http://127.0.0.1:9000 "
    "--storage-option client_kwargs.region_name=eu-west-1 (S3 also reads the AWS "
    "environment and profile: AWS_ENDPOINT_URL, AWS_PROFILE, ...)")


def add_storage_option(p: argparse.ArgumentParser) -> None:
    """``--storage-option KEY=VALUE`` (repeatable) on a command taking an archive."""
    p.add_argument("--storage-option", action="append", metavar="KEY=VALUE",
                   dest="storage_option", help=STORAGE_OPTION_HELP)


def storage_options(args: argparse.Namespace) -> Optional[dict]:
    """The ``--storage-option`` pairs as the library's ``storage_options`` (None
    without any: a plain path never imports fsspec)."""
    pairs = getattr(args, "storage_option", None)
    if not pairs:
        return None
    from ..archive.remote import storage_options_from
    return storage_options_from(pairs)


def _one_line(exc: BaseException) -> str:
    # libpq's messages span lines ("... failed: ...\n\tIs the server running ...")
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


class _Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so that the same clean-up runs (a dump
    removes its temporary file, a restore rolls back the table it was loading)."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def _json_error(args: argparse.Namespace, message: str) -> None:
    """The JSON report of a command stopped by an error, when --json asked for one."""
    if getattr(args, "json", False) and args.command in ("create", "load", "verify"):
        from ..report import error_report
        sys.stdout.write(json.dumps(error_report(args.command, message), indent=1) + "\n")
        sys.stdout.flush()


def _log_to_stderr() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))
    logger = logging.getLogger("dumpcodec")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return handler


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)
    handler = _log_to_stderr() if args.debug else None
    try:
        return _run(args)
    finally:
        if handler is not None:
            logging.getLogger("dumpcodec").removeHandler(handler)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("dumpcodec: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print("dumpcodec: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except BrokenPipeError:
        return EXIT_OK if args.command == "cat" else EXIT_FAILED
    except (DumpcodecError, OSError, ValueError) as exc:
        if args.debug:
            raise
        _json_error(args, _one_line(exc))
        print(f"dumpcodec {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # psycopg errors and the unexpected: still one line
        if args.debug:
            raise
        _json_error(args, f"{type(exc).__name__}: {_one_line(exc)}")
        print(f"dumpcodec {args.command}: error: {type(exc).__name__}: {_one_line(exc)}",
              file=sys.stderr)
        return EXIT_FAILED
