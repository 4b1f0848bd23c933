"""The remaining tracebacks of issue #30 (group 7), each now one line or handled.

- an ONNX file whose input has a batch dimension of 0;
- a DARTS architecture with auxiliary=true at 16 px (arch show accepted it,
  export and train crashed): refused alike by all three;
- `search --space-option in_channels=3 --data digits` (a channel mismatch in
  the first step; train already refused it);
- a text file named .jpg in an ImageFolder's val/ (crashed the evaluation
  after training): skipped and counted when the folder is opened;
- a corrupt config.json in an unfinished run: `search --resume` refused it
  only after running the whole search.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import onnx
import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_contract import refused  # noqa: E402
from folder_fixtures import write_image_folder  # noqa: E402
from hwnas.datasets import load_folder  # noqa: E402
from profilers._onnx import export_onnx  # noqa: E402
from search_spaces import get_space  # noqa: E402
from test_search_cli import TINY as SEARCH  # noqa: E402


def test_an_onnx_batch_of_zero_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    path = tmp_path / "zero.onnx"
    export_onnx(model, torch.zeros(1, 3, 16, 16), path, "torchscript")
    graph = onnx.load(str(path))
    graph.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 0
    onnx.save(graph, str(path))
    line = refused(["profile", "--model", str(path), "--backend", "ort", "--budget", "0.05"], capsys)
    assert "dimension 0 has size 0" in line


@pytest.mark.parametrize("command", [["arch", "show", "{file}"], ["export", "{file}", "--out", "{tmp}/out"],
                                     ["train", "{file}", "--data", "digits", "--steps", "1", "--out", "{tmp}/out"]])
def test_darts_auxiliary_at_16_px_is_refused_alike(tmp_path: Path, command: list[str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    space = get_space("darts", resolution=16, C=4, layers=3)
    document = space.sample_network(__import__("numpy").random.default_rng(0)).to_dict()
    document["config"]["auxiliary"] = True
    file = tmp_path / "aux.json"
    file.write_text(json.dumps(document))
    line = refused([part.format(file=file, tmp=tmp_path) for part in command], capsys, absent=[tmp_path / "out"])
    assert "auxiliary=true needs resolution 32" in line, line


def test_darts_auxiliary_head_fits_from_32_px() -> None:
    """The bound is the head's own: at 32 px (8x8 at 2/3 depth) it runs; at 28 px (7x7) it cannot."""
    space = get_space("darts", resolution=32, C=4, layers=3, auxiliary=True)
    network = space.build(space.sample_network(__import__("numpy").random.default_rng(0))).train()
    logits, auxiliary = network(torch.zeros(2, 3, 32, 32))
    assert auxiliary.shape == logits.shape
    with pytest.raises(ValueError, match="auxiliary"):
        get_space("darts", resolution=28, C=4, layers=3, auxiliary=True)


def test_search_refuses_channels_the_data_does_not_have(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    line = refused(["search", *SEARCH, "--space-option", "in_channels=3", "--out", str(out)], capsys)
    assert "in_channels" in line and "(1, 8, 8)" in line, line


def test_a_text_file_named_jpg_is_skipped_and_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_image_folder(tmp_path / "images")
    (root / "val" / "n00000000" / "notes.jpg").write_text("not an image\n")
    (root / "train" / "n00000001" / "empty.png").write_bytes(b"")
    data = load_folder(root, image_size=32, num_workers=0)
    assert "skipped 2 file(s)" in capsys.readouterr().err
    images = [image for image, _ in data.loader("test", 3, shuffle=False)]  # every val image loads
    assert sum(batch.shape[0] for batch in images) == 6


def test_resume_refuses_a_corrupt_config_before_searching(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    from hwnas.cli import main  # noqa: PLC0415

    assert main(["search", *SEARCH, "--out", str(out)]) == 0
    capsys.readouterr()
    (out / "summary.json").unlink()  # as a kill mid-search leaves it: checkpoint, metrics, no summary
    (out / "config.json").write_text('{"search": {')
    before = (out / "metrics.jsonl").read_bytes()
    line = refused(["search", *SEARCH, "--out", str(out), "--resume"], capsys)
    assert "config.json" in line and "not valid JSON" in line, line
    assert (out / "metrics.jsonl").read_bytes() == before  # refused before a step ran
