"""`hwnas doctor` reports devices, backends, providers and versions, and exits 0."""

from __future__ import annotations

import pytest

from hwnas.cli import main


def test_doctor_lists_backends_providers_and_versions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for needle in ("eager", "ort", "tensorrt", "CPUExecutionProvider", "torch", "onnxruntime", "python"):
        assert needle in out
    assert "works" in out
