"""The derived architecture drawn: DARTS cells as graphs, MBConv networks as a block diagram.

DARTS (and its S1/S2/factorized variants): one graph per cell type, inputs
c_{k-2} and c_{k-1} on the left, intermediate nodes 0..3, their concatenation
c_{k} on the right, every kept edge labelled with its op (as DARTS Fig. 4).
MBConv (proxyless): one box per searchable layer, left to right, labelled
MB<expansion> <kernel>x<kernel>, the box height growing with the expansion
ratio and its colour with the kernel; skipped layers ("zero") as thin grey
bars — the layout of UNAS Fig. 5. Both read only the architecture document.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from hwnas.report.plots import save

_EDGE = re.compile(r"^(?P<prefix>.+)\.node(?P<node>\d+)\.edge(?P<source>\d+)$")
_FACTORIZED = re.compile(r"^(?P<prefix>.+)\.node(?P<node>\d+)\.(?P<what>op|input)(?P<slot>\d+)$")
_MBCONV = re.compile(r"^k(?P<kernel>\d+)_?e(?P<expand>\d+)$")  # proxyless names: k5_e3
FIRST_NODE = 2
KERNEL_COLOURS = {3: "#8ecae6", 5: "#ffb703", 7: "#fb8500"}


def cell_edges(choices: dict[str, str]) -> dict[str, list[tuple[int, int, str]]]:
    """{cell type: [(source state, node, op)]} with `none` edges left out; states 0, 1 are the inputs."""
    cells: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    slots: dict[tuple[str, int, int], dict[str, str]] = defaultdict(dict)
    for name, choice in choices.items():
        if (edge := _EDGE.match(name)) and choice != "none":
            cells[edge["prefix"]].append((int(edge["source"]), int(edge["node"]), choice))
        elif factorized := _FACTORIZED.match(name):
            slots[(factorized["prefix"], int(factorized["node"]), int(factorized["slot"]))][factorized["what"]] = choice
    for (prefix, node, _), slot in sorted(slots.items()):
        if slot.get("op", "none") != "none" and "input" in slot:
            cells[prefix].append((int(slot["input"]), node, slot["op"]))
    return dict(cells)


def _label(state: int) -> str:
    return {0: "c_{k-2}", 1: "c_{k-1}"}.get(state, str(state - FIRST_NODE))


def _positions(nodes: list[int]) -> dict[int, tuple[float, float]]:
    """Inputs at the left, intermediate nodes in a zig-zag to the right (DARTS Fig. 4 style)."""
    position = {0: (0.0, 1.3), 1: (0.0, -1.3)}
    position.update({node: (1.8 + 1.6 * i, 0.9 if i % 2 == 0 else -0.9) for i, node in enumerate(nodes)})
    return position


def _edge(ax: Any, start: tuple[float, float], end: tuple[float, float], op: str, rad: float) -> None:
    """An arrow bent by `rad` (matplotlib arc3) with its op written along it at the curve's midpoint."""
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "-|>", "color": "#555", "shrinkA": 13,
                                                      "shrinkB": 13, "connectionstyle": f"arc3,rad={rad}"})
    (x0, y0), (x1, y1) = start, end
    dx, dy = x1 - x0, y1 - y0
    mid = ((x0 + x1) / 2 + 0.5 * rad * dy, (y0 + y1) / 2 - 0.5 * rad * dx)  # quadratic Bezier at t = 1/2
    angle = math.degrees(math.atan2(dy, dx))
    ax.text(*mid, op, fontsize=6.5, ha="center", va="center", color="#b00", rotation=angle, rotation_mode="anchor",
            bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})


def draw_darts(choices: dict[str, str], path: Path, max_cells: int = 4) -> Path | None:
    cells = cell_edges(choices)
    if not cells:
        return None
    names = list(cells)[:max_cells]
    figure = Figure(figsize=(8.5, 3.6 * len(names)))
    for row, prefix in enumerate(names):
        ax = figure.add_subplot(len(names), 1, row + 1)
        edges = cells[prefix]
        nodes = sorted({node for _, node, _ in edges} | {FIRST_NODE + i for i in range(4)})
        position = _positions(nodes)
        output = (position[nodes[-1]][0] + 1.6, 0.0)
        order = {state: (0 if state < FIRST_NODE else nodes.index(state) + 1) for state in position}
        drawn: dict[tuple[int, int], int] = defaultdict(int)
        for source, node, op in edges:
            skips = order[node] - order[source] > 1  # would pass through a node in between: bend it
            rad = (0.3 if position[source][1] > 0 else -0.3) if skips else 0.0
            rad += 0.35 * drawn[(source, node)]  # factorized cells may take one input twice: bend the second
            drawn[(source, node)] += 1
            _edge(ax, position[source], position[node], op, rad)
        for node in nodes:
            ax.annotate("", xy=output, xytext=position[node],
                        arrowprops={"arrowstyle": "-|>", "color": "#ccc", "shrinkA": 13, "shrinkB": 15})
        for state, (x, y) in position.items():
            colour = "#d8f3dc" if state < FIRST_NODE else "#bde0fe"
            ax.text(x, y, f"${_label(state)}$" if state < FIRST_NODE else _label(state), ha="center", va="center",
                    fontsize=9, bbox={"boxstyle": "round", "facecolor": colour, "edgecolor": "#333"})
        ax.text(*output, "$c_{k}$", ha="center", va="center", fontsize=9,
                bbox={"boxstyle": "round", "facecolor": "#ffe5b4", "edgecolor": "#333"})
        ax.set_xlim(-0.6, output[0] + 0.6)
        ax.set_ylim(-2.0, 2.0)
        ax.set_title(f"{prefix} cell", fontsize=10)
        ax.axis("off")
    return save(figure, path)


def mbconv_layers(choices: dict[str, str]) -> list[tuple[str, int | None, int | None]]:
    """[(decision, kernel, expansion)] in network order; (None, None) for a skipped layer."""
    layers = []
    for name, choice in choices.items():
        match = _MBCONV.match(choice)
        if match:
            layers.append((name, int(match["kernel"]), int(match["expand"])))
        elif choice == "zero":
            layers.append((name, None, None))
    return layers


def draw_mbconv(choices: dict[str, str], path: Path) -> Path | None:
    layers = mbconv_layers(choices)
    if not layers:
        return None
    figure = Figure(figsize=(max(6.0, 0.42 * len(layers) + 1.5), 3.2))
    ax = figure.add_subplot()
    x = 0.0
    previous_stage = None
    for name, kernel, expand in layers:
        stage = name.split(".")[0]
        if previous_stage is not None and stage != previous_stage:
            ax.axvline(x - 0.06, color="#ddd", linewidth=0.8)
        if stage != previous_stage:
            ax.text(x, -1.35, stage, fontsize=7, color="#666")
        previous_stage = stage
        if kernel is None:
            ax.add_patch(FancyBboxPatch((x, -0.15), 0.08, 0.3, boxstyle="round,pad=0.01", facecolor="#ccc", edgecolor="#999"))
            x += 0.2
            continue
        height = 0.35 + 0.12 * (expand or 1)
        ax.add_patch(FancyBboxPatch((x, -height / 2), 0.3, height, boxstyle="round,pad=0.02",
                                    facecolor=KERNEL_COLOURS.get(kernel, "#adb5bd"), edgecolor="#333"))
        ax.text(x + 0.15, 0, f"MB{expand} {kernel}x{kernel}", rotation=90, ha="center", va="center", fontsize=7)
        x += 0.42
    ax.set_xlim(-0.2, x + 0.1)
    ax.set_ylim(-1.5, 1.2)
    ax.axis("off")
    ax.set_title("derived network (left to right; grey bars: skipped layers)", fontsize=10)
    return save(figure, path)


def draw_architecture(arch: dict[str, Any], path: Path) -> Path | None:
    """The drawing that fits the architecture's space, or None for a space without one."""
    choices = dict(arch.get("choices", {}))
    if arch.get("space") == "darts":
        return draw_darts(choices, path)
    return draw_mbconv(choices, path)
