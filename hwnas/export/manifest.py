"""manifest.json: what an export folder holds, and the evidence that it is right.

One JSON document (format "hwnas.export", version 1): the architecture and
where its weights came from, the precision and batch sizes, the ONNX and
TensorRT details, input/output specs, the parity figures, the measured
latency per backend (`LatencyResult.to_dict()`, ms, with its full context),
library versions, and a sha256 and size for every file in the folder, so a
deployed file can be traced to this record.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Any

from profilers import LatencyResult
from profilers._context import library_versions
from search_spaces.files import write_json

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "hwnas.export"
MANIFEST_VERSION = 1
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_table(folder: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size (bytes) of every file in `folder` except the manifest itself."""
    return {
        path.name: {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name != MANIFEST_NAME
    }


def latency_entry(result: LatencyResult, staging: Path, final: Path) -> dict[str, Any]:
    """`result.to_dict()` with paths into the staging folder rewritten to the final folder."""
    data = result.to_dict()
    details = data["context"]["details"]
    for key, value in details.items():
        if isinstance(value, str):
            details[key] = value.replace(str(staging), str(final))
    return data


def write_manifest(folder: Path, sections: dict[str, Any]) -> Path:
    """Write `folder/manifest.json` from `sections` plus format, time, versions and file hashes."""
    document = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **sections,
        "versions": library_versions(),
        "files": file_table(folder),
    }
    return write_json(folder / MANIFEST_NAME, document)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of an export folder; refuses another format or version."""
    document = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    if document.get("format") != MANIFEST_FORMAT or document.get("version") != MANIFEST_VERSION:
        raise ValueError(f"{folder / MANIFEST_NAME} is not a {MANIFEST_FORMAT} v{MANIFEST_VERSION} manifest")
    return document


def latency_results(document: dict[str, Any]) -> dict[str, LatencyResult]:
    """The manifest's measured latencies, back as LatencyResult records (by backend)."""
    return {backend: LatencyResult.from_dict(data) for backend, data in document.get("latency", {}).items()}


def verify_files(folder: Path, document: dict[str, Any]) -> list[str]:
    """Names of the files whose hash or size no longer matches the manifest (empty = intact)."""
    current = file_table(folder)
    return [name for name, entry in document["files"].items() if current.get(name) != entry]
