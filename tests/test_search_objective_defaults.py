"""The objective a default search optimises is the paper's L_gen = L_train + 0.5 |L_val - L_train|
(UNAS Eq. 8), checked on what the search builds from its configuration, not on the objective
function's own default (issue #31: a search configuration with lambda 0 passed every test)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional

from hwnas.cli import build_parser
from hwnas.cli.search import config_from_args
from hwnas.search import SearchConfig
from hwnas.search.terms import AccuracyTerm


class PathNet(nn.Module):
    """A supernet stand-in with the search's calling convention: net(images, weights)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(6, 4)

    def forward(self, images: torch.Tensor, weights: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.linear(images) * weights["scale"]


def _batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(16, 6, generator=generator), torch.randint(0, 4, (16,), generator=generator)


@pytest.mark.parametrize("source", ["SearchConfig()", "hwnas search (no flags)"])
def test_default_search_objective_is_l_gen_with_lambda_one_half(source: str) -> None:
    config = SearchConfig() if source == "SearchConfig()" else config_from_args(build_parser().parse_args(["search"]))
    net, weights = PathNet(), {"scale": torch.tensor(1.7)}
    train_batch, val_batch = _batch(1), _batch(2)
    term = AccuracyTerm(net, config.estimator.objective, config.estimator.gen_lambda, train_batch, val_batch)
    with torch.no_grad():
        l_train = functional.cross_entropy(net(train_batch[0], weights), train_batch[1]).item()
        l_val = functional.cross_entropy(net(val_batch[0], weights), val_batch[1]).item()
        assert abs(l_val - l_train) > 0.05, "the two batches must differ for the check to mean anything"
        assert term(weights).item() == pytest.approx(l_train + 0.5 * abs(l_val - l_train), rel=1e-6)
