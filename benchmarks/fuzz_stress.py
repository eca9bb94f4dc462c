"""Stress profile of the property-based fuzzing: >= 10,000 examples per loss.

Runs the checks of tests/_fuzz.py (the same ones the CI profile runs with 25
examples) and counts the examples whose check fails, instead of stopping at
the first: the target is 0 failures. Prints one line per check and, with
--output, writes them to a results file as they finish.

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/fuzz_stress.py \
        --output benchmarks/results_committed/fuzz_stress.txt
"""

import argparse
import pathlib
import sys
import time
import traceback

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests import _fuzz  # noqa: E402

CHECKS = {
    **{f"loss:{k}": v for k, v in _fuzz.LOSS_CHECKS.items()},
    **{f"structure:{k}": v for k, v in _fuzz.STRUCTURE_CHECKS.items()},
}


def run(name, check, n_examples, seed):
    counts = {"examples": 0, "failures": 0, "first": None}

    def counted(data):
        counts["examples"] += 1
        try:
            check(data)
        except AssertionError as exc:
            counts["failures"] += 1
            counts["first"] = counts["first"] or str(exc).splitlines()[0][:160]
        except Exception as exc:  # an error is a failure too (a deep torch traceback)
            if type(exc).__name__ in ("UnsatisfiedAssumption",):
                raise
            counts["failures"] += 1
            counts["first"] = counts["first"] or "".join(
                traceback.format_exception_only(type(exc), exc)
            ).strip()[:160]

    profile = settings(settings.get_profile("stress"), max_examples=n_examples, database=None)
    test = given(st.data())(profile(counted))
    test._hypothesis_internal_use_seed = seed
    start = time.perf_counter()
    test()
    return counts, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument(
        "--structure-examples", type=int, default=None,
        help="examples per structure check (default: --examples)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=None, help="comma-separated check names")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(CHECKS)
    out = open(args.output, "w") if args.output else None
    n_structure = args.structure_examples or args.examples
    header = (
        f"# fuzz_stress: {args.examples} examples requested per loss check, "
        f"{n_structure} per structure check, seed {args.seed}; "
        "a machine shared with other jobs (timings are loaded).\n"
        f"# command: python benchmarks/fuzz_stress.py {' '.join(sys.argv[1:] if argv is None else argv)}\n"
        "# check  examples  failures  seconds  first failure\n"
    )
    for stream in (sys.stdout, out):
        if stream:
            stream.write(header)
            stream.flush()
    total = 0
    for name in names:
        n = n_structure if name.startswith("structure:") else args.examples
        counts, seconds = run(name, CHECKS[name], n, args.seed)
        total += counts["failures"]
        line = (
            f"{name:26s} {counts['examples']:8d} {counts['failures']:8d} {seconds:8.1f}  "
            f"{counts['first'] or '-'}\n"
        )
        for stream in (sys.stdout, out):
            if stream:
                stream.write(line)
                stream.flush()
    for stream in (sys.stdout, out):
        if stream:
            stream.write(f"# total failures: {total}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
