"""`hwnas doctor`: what this machine offers for timing, and why the rest does not work.

Devices, the backends that work on each (ONNX Runtime per provider, each
provider tried on a one-node model so "listed" is never mistaken for
"works"; `profilers.backends._ort_probe`), library versions, the NVIDIA driver
and the newest CUDA it supports beside the CUDA torch was built for, and for
CUDA / TensorRT the real reason they are unavailable (a torch built for a
newer CUDA than the driver supports is named as such).
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("doctor", help="devices, backends and providers that work here, versions")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch  # noqa: PLC0415 - keeps `hwnas --help` fast
    from rich.console import Console  # noqa: PLC0415
    from rich.markup import escape  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    import profilers  # noqa: PLC0415
    from profilers._context import library_versions, nvidia_driver  # noqa: PLC0415
    from profilers._device import cuda_unavailable_reason, device_name  # noqa: PLC0415

    console = Console()
    devices = ["cpu"] + [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    table = Table(title="devices and backends")
    for column in ("device", "name", "backend", "status"):
        table.add_column(column)
    for device in devices:
        name = device_name(torch.device(device))
        if device == "cpu":
            name += f" ({torch.get_num_threads()} torch threads)"
        else:
            props = torch.cuda.get_device_properties(device)
            name += f" ({props.total_memory / 2**30:.0f} GiB, sm_{props.major}{props.minor})"
        for backend, reason in profilers.available_backends(device).items():
            table.add_row(device, name, backend, "[green]works[/]" if reason is None else f"[red]no[/]: {escape(reason)}")
    cuda_reason = cuda_unavailable_reason()
    if cuda_reason is not None:
        table.add_row("cuda", "-", "all", f"[red]no[/]: {escape(cuda_reason)}")
    console.print(table)
    console.print(_provider_table())
    versions = Table(title="versions")
    versions.add_column("library")
    versions.add_column("version")
    for library, version in library_versions().items():
        versions.add_row(library, version)
    driver = nvidia_driver()
    versions.add_row("NVIDIA driver", escape(driver.version or f"none ({driver.error})"))
    versions.add_row("driver supports CUDA up to", str(driver.cuda or "-"))
    if "tensorrt" not in library_versions():
        versions.add_row("tensorrt", escape(f"not importable ({_import_error('tensorrt')}): pip install 'hwnas[tensorrt]' on a machine with an NVIDIA GPU"))
    console.print(versions)
    return 0


def _provider_table() -> Any:
    """ONNX Runtime providers: listed by the wheel, and whether a session really uses them."""
    from rich.markup import escape  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table(title="ONNX Runtime execution providers")
    table.add_column("provider")
    table.add_column("status")
    try:
        import onnxruntime as ort  # noqa: PLC0415
    except ImportError as error:
        table.add_row("-", f"[red]onnxruntime not importable[/]: {escape(str(error))}")
        return table
    from profilers.backends._ort_probe import provider_unusable_reason  # noqa: PLC0415

    for provider in ort.get_available_providers():
        reason = provider_unusable_reason(provider)
        table.add_row(provider, "[green]works[/]" if reason is None else f"[red]no[/]: {escape(reason)}")
    return table


def _import_error(module: str) -> str:
    import importlib  # noqa: PLC0415

    try:
        importlib.import_module(module)
    except ImportError as error:
        return str(error)
    return "imports"
