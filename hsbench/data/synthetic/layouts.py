"""The two scene layouts: driving streets (target domains) and nadir land cover (source domain).

A layout is ``layout(rng, height, width, *, direct_sun) -> Scene``: it decides what is where and which material
each object is made of, but draws no spectrum. Datasets map the layout's part names to their classes.
"""

from __future__ import annotations

import numpy as np

from hsbench.data.synthetic.canvas import Canvas, Scene
from hsbench.data.synthetic.landcover import AERIAL_PARTS, aerial_scene
from hsbench.data.synthetic.street import STREET_PARTS, draw_street
from hsbench.data.synthetic.street_props import draw_props

__all__ = ["street_scene", "aerial_scene", "STREET_PARTS", "AERIAL_PARTS"]


def street_scene(rng: np.random.Generator, height: int, width: int, *, direct_sun: bool = True) -> Scene:
    """Lay out one driving scene seen from a car (sky, street background, then props far to near).

    Args:
        rng: the image's random stream.
        height: rows.
        width: columns.
        direct_sun: whether the sun is out; overcast scenes only get contact shadows.
    """
    canvas = Canvas(height, width, rng)
    street = draw_street(rng, canvas, direct_sun=direct_sun)
    draw_props(rng, canvas, street)
    return canvas.scene(unshaded=("sky",))
