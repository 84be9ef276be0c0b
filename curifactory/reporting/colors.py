"""One distinct colour per record, shared by the report's cards and the stage graph."""

from __future__ import annotations

import colorsys

_GOLDEN = 0.618033988749895


def record_color(index: int | None) -> str:
    """A hex colour for the record at ``index`` (grey for ``None``).

    Hues step by the golden ratio so neighbouring records differ clearly however
    many records there are; lightness and saturation keep text on white readable.
    """
    if index is None or index < 0:
        return "#777777"
    hue = (0.58 + index * _GOLDEN) % 1.0
    red, green, blue = colorsys.hls_to_rgb(hue, 0.40, 0.65)
    return f"#{round(red * 255):02x}{round(green * 255):02x}{round(blue * 255):02x}"
