"""The embedded synthetic hyperspectral scene generator (no download, deterministic, physically motivated).

Modules, in the order an image is made: :mod:`.spectra` (fine grid and smooth spectral shapes),
:mod:`.materials` (material library with per-object variability), :mod:`.illumination` (sun, shade, sky),
:mod:`.canvas`, :mod:`.street`, :mod:`.street_props`, :mod:`.landcover` and :mod:`.layouts` (procedural scenes),
:mod:`.sensor` (band responses, quantum efficiency, noise) and :mod:`.generator` (rendering and labels).
The registered datasets built on it live in :mod:`hsbench.data.synthetic_datasets`.
"""

from hsbench.data.synthetic.canvas import Canvas, Scene
from hsbench.data.synthetic.generator import GENERATOR_VERSION, SyntheticRecipe, generate_sample, label_map, render_cube
from hsbench.data.synthetic.illumination import Illumination, LightingProfile, draw_illumination
from hsbench.data.synthetic.layouts import AERIAL_PARTS, STREET_PARTS, aerial_scene, street_scene
from hsbench.data.synthetic.materials import MATERIALS, Material, Reflectance, draw_reflectance
from hsbench.data.synthetic.sensor import NoiseProfile, Sensor, add_sensor_noise, silicon_qe
from hsbench.data.synthetic.spectra import FINE_WAVELENGTHS_NM

__all__ = [
    "AERIAL_PARTS",
    "FINE_WAVELENGTHS_NM",
    "GENERATOR_VERSION",
    "MATERIALS",
    "STREET_PARTS",
    "Canvas",
    "Illumination",
    "LightingProfile",
    "Material",
    "NoiseProfile",
    "Reflectance",
    "Scene",
    "Sensor",
    "SyntheticRecipe",
    "add_sensor_noise",
    "aerial_scene",
    "draw_illumination",
    "draw_reflectance",
    "generate_sample",
    "label_map",
    "render_cube",
    "silicon_qe",
    "street_scene",
]
