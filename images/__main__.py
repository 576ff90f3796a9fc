"""``python -m images``: the ``mosaik image`` commands without the console script."""

from __future__ import annotations

from images.cli import image_group

image_group(prog_name="python -m images")
