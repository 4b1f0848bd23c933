"""Profiler backends: one registry, one surface (`Backend.prepare` -> `Runner`)."""

from __future__ import annotations

from profilers.backends.base import Backend, PrepareRequest, Runner, check_request, get_backend, list_backends, register_backend
from profilers.backends.eager import EagerBackend
from profilers.backends.ort import OrtBackend
from profilers.backends.tensorrt import TensorRTBackend

register_backend(EagerBackend())
register_backend(OrtBackend())
register_backend(TensorRTBackend())

__all__ = ["Backend", "PrepareRequest", "Runner", "check_request", "get_backend", "list_backends", "register_backend"]
