"""The dumpcodec command line (placeholder)."""
import sys


def main(argv=None) -> int:
    print("dumpcodec: commands are being built", file=sys.stderr)
    return 2
