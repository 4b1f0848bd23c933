"""Weights for an exported network: a training checkpoint, a supernet's
selected paths, or a seeded random initialisation whose BatchNorm statistics
are calibrated so that the output depends on the input.

Checkpoints are read with `torch.load(..., weights_only=True)`: a checkpoint
is data, never code. Accepted layouts: a state_dict, or a dict holding one
under "state_dict" or "model" (what `hwnas train` and common training
scripts save); a DistributedDataParallel "module." prefix is removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hwnas.errors import UsageError
from search_spaces import Architecture, SearchSpace
from search_spaces.files import open_regular

_NESTED_KEYS = ("state_dict", "model")
_SHOWN = 2  # keys named in a mismatch message; the counts say how many there are
CALIBRATION_BATCH = 8


def _load(path: Path) -> Any:
    handle = open_regular(path, UsageError, what="checkpoint", fix="give the .pt file a training run wrote")
    try:
        with handle:
            return torch.load(handle, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - unpickling refusals and corrupt files alike
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"cannot read checkpoint {path} with weights_only=True ({first[:200]})") from None


def _state_dict(loaded: Any, path: Path) -> dict[str, Tensor]:
    state = loaded
    if isinstance(loaded, Mapping):
        for key in _NESTED_KEYS:
            if isinstance(loaded.get(key), Mapping):
                state = loaded[key]
                break
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise UsageError(
            f"checkpoint {path} is not a state_dict (nor a dict with one under {' or '.join(map(repr, _NESTED_KEYS))})"
        )
    state = {str(key): value for key, value in state.items()}
    if state and all(key.startswith("module.") for key in state):
        state = {key.removeprefix("module."): value for key, value in state.items()}
    return state


def read_checkpoint(path: Path) -> dict[str, Tensor]:
    """The state_dict stored in `path` (tensors on the CPU)."""
    return _state_dict(_load(path), path)


def load_state(model: nn.Module, state: Mapping[str, Tensor], what: str) -> None:
    """Load `state` into `model` exactly; refuse any missing, unexpected or
    mis-shaped tensor with one line that names a couple of each."""
    own = model.state_dict()
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    shapes = [key for key in own if key in state and tuple(own[key].shape) != tuple(state[key].shape)]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected)):
        if keys:
            problems.append(f"{len(keys)} {label} (e.g. {', '.join(keys[:_SHOWN])})")
    if shapes:
        key = shapes[0]
        problems.append(
            f"{len(shapes)} of another shape (e.g. {key}: {tuple(state[key].shape)} vs {tuple(own[key].shape)})"
        )
    if problems:
        raise UsageError(f"{what} does not match the architecture: {'; '.join(problems)}")
    check_finite(state, what)
    model.load_state_dict(dict(state), strict=True)


def check_finite(state: Mapping[str, Tensor], what: str) -> None:
    """Refuse weights holding NaN or Inf (a diverged training): the network they make outputs NaN,
    and NaN compared with NaN would look like parity."""
    bad = [key for key, value in state.items() if value.is_floating_point() and not torch.isfinite(value).all()]
    if bad:
        count = sum(int((~torch.isfinite(state[key])).sum()) for key in bad)
        raise UsageError(f"{what} holds {count} values that are not finite (NaN or Inf) in {len(bad)} tensor(s), "
                         f"e.g. {bad[0]}; these weights are unusable (a diverged training?): use an earlier checkpoint")


def load_weights(model: nn.Module, path: Path, arch: Architecture | None = None) -> None:
    """Load a training checkpoint into the standalone network of `arch`.

    A `hwnas train` checkpoint records the architecture it was trained as
    (classes and input fitted to the data): when that differs from `arch`
    and the weights do not fit, the message points to the run's arch.json.
    """
    loaded = _load(path)
    try:
        load_state(model, _state_dict(loaded, path), f"checkpoint {path.name}")
    except UsageError as error:
        recorded = loaded.get("arch") if isinstance(loaded, Mapping) else None
        if arch is not None and isinstance(recorded, Mapping) and (
            recorded.get("config") != arch.config or recorded.get("choices") != arch.choices
        ):
            raise UsageError(f"{error}; the checkpoint was trained as another architecture: export its run's arch.json") from None
        raise


def inherit_weights(space: SearchSpace, arch: Architecture, path: Path) -> nn.Module:
    """The standalone network of `arch` with the weights of its selected paths in a
    supernet checkpoint (a state_dict of `space.supernet(...)`, independent or shared weights:
    the one whose tensor names the checkpoint holds)."""
    state = read_checkpoint(path)
    supernet = space.supernet()
    for sharing, batchnorm in (("shared", "choice"), ("shared", "shared")):
        candidate = space.supernet(weight_sharing=sharing, batchnorm=batchnorm)
        if set(candidate.state_dict()) == set(state):
            supernet = candidate
            break
    load_state(supernet, state, f"supernet checkpoint {path.name}")
    return space.extract_subnet(supernet, arch)


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, input_shape: tuple[int, ...], seed: int) -> nn.Module:
    """Set every BatchNorm's running statistics to those of N(0,1) inputs.

    A freshly initialised network in eval mode normalises with mean 0 and
    variance 1 while its real activations shrink layer by layer, so its
    output is nearly the classifier bias whatever the input, and a parity
    check on it proves nothing. One pass in train mode with cumulative
    averaging (momentum None) gives statistics under which activations keep
    their scale; the exported network then computes something input-dependent.
    """
    norms = [module for module in model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return model.eval()
    saved = [module.momentum for module in norms]
    for module in norms:
        module.reset_running_stats()
        module.momentum = None
    generator = torch.Generator().manual_seed(seed)
    shape = (max(CALIBRATION_BATCH, input_shape[0]), *input_shape[1:])
    model.train()
    model(torch.randn(shape, generator=generator))
    for module, momentum in zip(norms, saved, strict=True):
        module.momentum = momentum
    return model.eval()
