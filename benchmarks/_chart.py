"""Grouped bar charts (PNG) for benchmark results; matplotlib is optional (`pip install -e .[bench]`)."""

from __future__ import annotations

from pathlib import Path


def bars(path: Path, title: str, groups: list[str], series: dict[str, list[float]], ylabel: str) -> Path | None:
    """One bar per series in each group; returns the PNG path, or None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no chart: matplotlib is not installed; pip install -e '.[bench]')")
        return None
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(groups)), 4))
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        rects = ax.bar(xs, values, width, label=name)
        ax.bar_label(rects, fmt="%.2f", fontsize=8)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"chart: {path}")
    return path
