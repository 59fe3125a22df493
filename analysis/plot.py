"""A grouped bar chart as a uint8 image, drawn with Pillow (already a dependency of imageio).

Small on purpose: enough for the README's equivariance figure without pulling in matplotlib.
"""

from __future__ import annotations

import math

import numpy as np

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]  # 10 distinct colours
WIDTH, HEIGHT = 880, 360  # image size in pixels
MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP, MARGIN_RIGHT = 48, 28, 28, 250  # axes box inside the image


def bar_chart(groups: list[str], series: dict[str, list[float]], title: str = "", unit: str = "dB") -> np.ndarray:
    """[HEIGHT, WIDTH, 3] uint8: one cluster per group, one coloured bar per series, legend on the right.

    series: name -> one value per group; non-finite values draw no bar (and are written as such).
    """
    from PIL import Image, ImageDraw

    for name, values in series.items():
        if len(values) != len(groups):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(groups)} groups")
    finite = [v for values in series.values() for v in values if math.isfinite(v)]
    step = 10.0 if max(finite, default=10.0) <= 60 else 20.0  # grid spacing of the y axis
    top = max(step, math.ceil(max(finite, default=step) / step) * step)  # y axis: 0 .. next grid line
    img = Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    x0, y0, x1, y1 = MARGIN_LEFT, MARGIN_TOP, WIDTH - MARGIN_RIGHT, HEIGHT - MARGIN_BOTTOM

    def y_of(v: float) -> float:
        return y1 - (y1 - y0) * min(max(v, 0.0), top) / top

    for tick in np.arange(0, top + step / 2, step):  # horizontal grid with labels
        y = y_of(tick)
        draw.line([(x0, y), (x1, y)], fill=(225, 225, 225))
        draw.text((4, y - 6), f"{tick:g}", fill=(80, 80, 80))
    draw.text((4, 4), f"{title}  [{unit}]" if title else unit, fill=(0, 0, 0))
    n = max(1, len(series))
    cluster = (x1 - x0) / max(1, len(groups))
    bar = cluster * 0.8 / n
    for g, group in enumerate(groups):
        left = x0 + g * cluster + cluster * 0.1
        for s, (name, values) in enumerate(series.items()):
            v = values[g]
            bx = left + s * bar
            if math.isfinite(v):
                draw.rectangle([bx + 1, y_of(v), bx + bar - 1, y1], fill=PALETTE[s % len(PALETTE)])
            draw.text((bx + 1, min(y_of(v), y1) - 12 if math.isfinite(v) else y1 - 12),
                      f"{v:.0f}" if math.isfinite(v) else "-", fill=(0, 0, 0))
        draw.text((left, y1 + 8), group, fill=(0, 0, 0))
    draw.line([(x0, y1), (x1, y1)], fill=(0, 0, 0))
    for s, name in enumerate(series):  # legend
        ly = y0 + s * 18
        draw.rectangle([x1 + 12, ly, x1 + 24, ly + 12], fill=PALETTE[s % len(PALETTE)])
        draw.text((x1 + 30, ly), name, fill=(0, 0, 0))
    return np.asarray(img)
