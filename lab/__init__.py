"""The lab beside the product: ablations, benchmarks, the in-process engine's command line, result scripts.

Nothing in `reid_core`, the apps or the `fedureid` command's product commands imports
it, and the wheel does not ship it; `fedureid ablation` and `fedureid bench` run it
from a developer checkout.
"""
