"""Whether an ONNX Runtime execution provider really loads here, and if not, why.

`onnxruntime.get_available_providers()` lists the providers a wheel was *built*
with, not the ones that load: onnxruntime-gpu lists CUDAExecutionProvider on
a machine without a driver, or with the wrong CUDA/cuDNN, and a session asked
for it then silently runs on the CPU (microsoft/onnxruntime#21769; seen here:
onnxruntime-gpu 1.31.1 without libcuda.so.1 lists CUDA and TensorRT, and both
sessions fall back to CPUExecutionProvider). So a provider counts as usable
only once a one-node session created with it alone reports it as its first
provider. ORT writes the real cause (the library that failed to load) to the
process's native stderr, not into an exception, so the probe reads it there.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from functools import cache
from typing import Any

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CAUSES = (
    re.compile(r"Failed to load library .*? with error: (?P<cause>.+)"),
    re.compile(r"EP Error (?P<cause>.+)"),
    re.compile(r"(?P<cause>Failed to create \w+ExecutionProvider.*)"),
)


@contextlib.contextmanager
def native_stderr() -> Iterator[list[str]]:
    """Collect what native code writes to file descriptor 2 inside the block (lines, ANSI colours removed)."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(_ANSI.sub("", line).strip() for line in sink.read().decode(errors="replace").splitlines())


def failure_cause(lines: list[str]) -> str | None:
    """The most specific cause ORT logged: the library that did not load, else its EP error."""
    for pattern in _CAUSES:
        for line in lines:
            match = pattern.search(line)
            if match:
                return match.group("cause").strip()[:240]
    return None


def _identity_model() -> bytes:
    from onnx import TensorProto, helper  # noqa: PLC0415

    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [value], [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = min(model.ir_version, 10)
    return model.SerializeToString()


@cache
def provider_unusable_reason(provider: str, device_id: int = 0) -> str | None:
    """None when a session created with `provider` alone (on GPU `device_id`) uses it;
    else one line saying why not. Cached: each provider is probed once per process."""
    try:
        import onnxruntime as ort  # noqa: PLC0415
    except ImportError as error:
        return f"onnxruntime is not importable ({error})"
    if provider not in ort.get_available_providers():
        return f"this onnxruntime ({ort.__version__}, {_package(ort)}) has no {provider}"
    options: dict[str, Any] = {} if provider == "CPUExecutionProvider" else {"device_id": str(device_id)}
    raised, printed = "", io.StringIO()
    with native_stderr() as lines, contextlib.redirect_stdout(printed):  # ORT's Python layer prints its fallback
        try:
            session = ort.InferenceSession(_identity_model(), providers=[(provider, options)])
            used = session.get_providers()[0]
        except Exception as error:  # noqa: BLE001 - ORT raises its own untyped errors
            used, raised = None, str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
    lines.extend(printed.getvalue().splitlines())
    if used == provider:
        return None
    cause = failure_cause(lines) or (raised if used is None else "ORT logged no cause")
    outcome = "session creation failed" if used is None else f"a session falls back to {used}"
    return f"{provider} is listed by onnxruntime {ort.__version__} but does not load ({outcome}): {cause}"


def _package(ort: Any) -> str:
    """'onnxruntime-gpu' or 'onnxruntime' (the CPU wheel), as far as the build info tells."""
    try:
        from onnxruntime.capi import build_and_package_info  # noqa: PLC0415

        return str(build_and_package_info.package_name)
    except Exception:  # noqa: BLE001 - only decorates the message
        return "package unknown"
