"""Peak memory of one 224x224 proxyless architecture step, measured and estimated (issue #30).

Each measurement runs in its own child process (so ru_maxrss is that step's
peak, not an earlier one's): the supernet forward at the estimator's path
weights (every candidate at relaxed weights for REBAR's relaxed evaluation,
one path for GDAS) and its backward, on one search-val batch. The estimate is
hwnas.search.footprint.search_peak (meta device, nothing allocated).

    nice -n 10 .venv/bin/python benchmarks/search_memory.py [--measure rebar:1,rebar:2,gdas:8,gdas:32]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SPACE = {"resolution": 224, "num_classes": 4}
SUPERNET = {"weight_sharing": "shared", "batchnorm": "choice"}


def step(estimator: str, batch: int) -> int:
    """Run one architecture step's supernet evaluation + backward; return the peak RSS in bytes."""
    import torch  # noqa: PLC0415

    from search_spaces import get_space  # noqa: PLC0415

    torch.set_num_threads(1)
    space = get_space("proxyless", **SPACE)
    net = space.supernet(**SUPERNET).train()
    logits = {d.name: torch.zeros(len(d.choices), requires_grad=True) for d in space.decisions}
    if estimator == "gdas":
        weights = {n: torch.nn.functional.one_hot(torch.tensor(0), len(v)).float() + v - v.detach()
                   for n, v in logits.items()}
    else:
        weights = {n: torch.softmax(v, dim=-1) for n, v in logits.items()}
    images = torch.randn(batch, 3, 224, 224)
    loss = torch.nn.functional.cross_entropy(net(images, weights), torch.zeros(batch, dtype=torch.long))
    loss.backward()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", default="rebar:1,rebar:2,gdas:8")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        estimator, batch = args.child.split(":")
        print(step(estimator, int(batch)))
        return 0
    from hwnas.search.footprint import search_peak  # noqa: PLC0415
    from search_spaces import get_space  # noqa: PLC0415

    space = get_space("proxyless", **SPACE)
    rows = []
    for estimator, batch in (("rebar", 1), ("rebar", 2), ("rebar", 8), ("rebar", 32), ("gdas", 8), ("gdas", 32)):
        need = search_peak(space, estimator, "val", batch, (3, 224, 224), SUPERNET)
        rows.append({"estimator": estimator, "batch": batch, "estimate_gib": need.bytes / 2**30, "measured_gib": None})
    for item in args.measure.split(","):
        estimator, batch = item.split(":")
        done = subprocess.run([sys.executable, __file__, "--child", item], capture_output=True, text=True, check=True)
        for row in rows:
            if row["estimator"] == estimator and row["batch"] == int(batch):
                row["measured_gib"] = int(done.stdout.strip()) / 2**30
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
