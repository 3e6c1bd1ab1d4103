"""The federation in one process, from the command line: for a GPU box that has torch but not Ray.

`fedureid simulate` needs Flower's simulation engine (Ray); this runs the same
federation core and learners (`reid_core.federation.in_process`), one edge after
another, and writes the same metrics.json, report and checkpoint (a rerun resumes).

Run: ``python -m lab.inprocess experiment=real_cpu_cc learner=cc run_dir=DIR [--deadline-s S]``;
with a deadline, no round after the first starts once the time left is shorter than
the last round took, so a time-bound run ends with whole rounds.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from fedureid.aggregators import aggregation_rule
from reid_core.config.settings import ConfigError, load_settings
from reid_core.federation.in_process import run_in_process


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for `fedureid simulate`")
    parser.add_argument("--deadline-s", type=float, default=None, help="start no round that would end past this")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        settings = load_settings(list(args.overrides))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    fed = settings.federation
    run_in_process(settings, args.deadline_s, rule=aggregation_rule(fed.aggregation, fed.num_malicious, fed.trim))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
