"""``python -m benchmarks``: the benchmark runner (``benchmarks/run.py``); groups with
a runner of their own as ``python -m benchmarks NAME ...`` (``run.OWN_RUNNER_GROUPS``:
``big-table``, ``objstore``)."""
import sys

from benchmarks.run import main

sys.exit(main())
