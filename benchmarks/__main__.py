"""``python -m benchmarks``: the benchmark runner (``benchmarks/run.py``);
``python -m benchmarks objstore ...``: dump/restore through S3 (``bench_objstore.py``)."""
import sys

if len(sys.argv) > 1 and sys.argv[1] == "objstore":
    from benchmarks.bench_objstore import main as objstore_main
    sys.exit(objstore_main(sys.argv[2:]))

from benchmarks.run import main  # noqa: E402

sys.exit(main())
