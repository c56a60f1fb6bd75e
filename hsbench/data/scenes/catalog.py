"""The classic remote-sensing classification scenes, each one sample read from two MATLAB files.

Data cards
----------
``indian_pines``  AVIRIS, 1992, Indiana farmland; 145 x 145 px, 200 bands (corrected), 16 classes.
``pavia_u``       ROSIS, Pavia University campus; 610 x 340 px, 103 bands, 9 classes.
``pavia_c``       ROSIS, Pavia city centre; 1096 x 715 px, 102 bands, 9 classes.
``salinas``       AVIRIS, Salinas Valley farmland; 512 x 217 px, 204 bands (corrected), 16 classes.
``ksc``           AVIRIS, 1996, Kennedy Space Center wetlands; 512 x 614 px, 176 bands, 13 classes.
``botswana``      EO-1 Hyperion, 2001, Okavango Delta; 1476 x 256 px, 145 bands, 14 classes.
``houston2013``   CASI-1500, 2012, University of Houston (GRSS DFC 2013); 349 x 1905 px, 144 bands, 15 classes.

Every card: task ``scene`` (k-shot splits, no official split), ignore index 255, raw 0 = unlabelled and raw
``1..K`` -> ``0..K-1``, pseudo-RGB = the bands nearest 640 / 550 / 460 nm. The files hold no wavelengths: the cards
compute them from sensor facts (``hsbench.data.scenes.sensors``); each description says how. How to obtain: each
card's ``how_to_obtain`` names the files and keys (see ``docs/datasets/scenes.md``).
"""

from __future__ import annotations

from hsbench.data.scenes._card import scene_card
from hsbench.data.scenes.matscene import MatSceneFormat, MatVariable
from hsbench.data.scenes.sensors import aviris_nominal_nm, evenly_spaced_nm, hyperion_nm, kept_channels
from hsbench.data.source import RealDatasetProvider
from hsbench.registry import DATASETS

__all__ = ["IndianPines", "PaviaU", "PaviaC", "Salinas", "KSC", "Botswana", "Houston2013"]

_GIC = "https://www.ehu.eus/ccwintco/index.php/Hyperspectral_Remote_Sensing_Scenes"
_NO_LICENCE = "no licence stated by the distributors; free download for research, cite the source"
_AVIRIS_NOTE = (
    "Wavelengths are nominal: AVIRIS channels on one evenly spaced grid (channel 5 = 400 nm, channel 224 = 2500 nm, "
    "9.59 nm apart), so true centres may differ by about a band width, most near the spectrometer joins."
)
_ROSIS_NOTE = (
    "Wavelengths are nominal: evenly spaced over ROSIS's 430-860 nm (which noisy bands were dropped is not published)."
)


def _obtain(cube: MatVariable, labels: MatVariable, where: str = _GIC) -> str:
    return (
        f"download {cube.file_name} (key {cube.key!r}) and {labels.file_name} (key {labels.key!r}) from {where} "
        "into one folder; keys and file names match case-insensitively"
    )


def _format(name: str, cube: MatVariable, labels: MatVariable, shape: tuple[int, int, int]) -> dict:
    return {"mat": MatSceneFormat(sample_id=name, cube=cube, labels=labels, shape=shape)}


# --- Indian Pines --------------------------------------------------------------------------------------------------
# The 220-band file is AVIRIS channels 5-224; the corrected file drops its bands [104-108], [150-163] and 220.
_IP_CUBE = MatVariable("Indian_pines_corrected.mat", "indian_pines_corrected")
_IP_GT = MatVariable("Indian_pines_gt.mat", "indian_pines_gt")
_IP_SHAPE = (145, 145, 200)
INDIAN_PINES_CARD = scene_card(
    "indian_pines",
    wavelengths_nm=aviris_nominal_nm([b + 4 for b in kept_channels(220, [(104, 108), (150, 163), 220])]),
    class_names=(
        "Alfalfa", "Corn-notill", "Corn-mintill", "Corn", "Grass-pasture", "Grass-trees", "Grass-pasture-mowed",
        "Hay-windrowed", "Oats", "Soybean-notill", "Soybean-mintill", "Soybean-clean", "Wheat", "Woods",
        "Buildings-Grass-Trees-Drives", "Stone-Steel-Towers",
    ),
    shape=_IP_SHAPE,
    labelled_px=10249,
    description=(
        "AVIRIS scene of the Indian Pines test site, north-western Indiana (12 June 1992), 20 m pixels: two thirds "
        "agriculture, one third forest. The corrected cube keeps 200 of 220 bands (bands [104-108], [150-163] and "
        "220 removed: water absorption). " + _AVIRIS_NOTE
    ),
    citation=(
        "Baumgardner, M. F., Biehl, L. L., Landgrebe, D. A. (2015). 220 Band AVIRIS Hyperspectral Image Data Set: "
        "June 12, 1992 Indian Pine Test Site 3. Purdue University Research Repository. doi:10.4231/R7RX991C"
    ),
    licence="Purdue University Research Repository terms (doi:10.4231/R7RX991C); the GIC .mat copy states none",
    how_to_obtain=_obtain(_IP_CUBE, _IP_GT),
)

# --- Pavia University / Pavia Centre ------------------------------------------------------------------------------
_PU_CUBE, _PU_GT = MatVariable("PaviaU.mat", "paviaU"), MatVariable("PaviaU_gt.mat", "paviaU_gt")
_PU_SHAPE = (610, 340, 103)
_PAVIA_CITATION = (
    "Gamba, P. (2004). A collection of data for urban area characterization. IGARSS 2004; data courtesy of "
    "P. Gamba, Telecommunications and Remote Sensing Laboratory, University of Pavia"
)
PAVIA_U_CARD = scene_card(
    "pavia_u",
    wavelengths_nm=evenly_spaced_nm(430.0, 860.0, 103),
    class_names=(
        "Asphalt", "Meadows", "Gravel", "Trees", "Painted metal sheets", "Bare Soil", "Bitumen",
        "Self-Blocking Bricks", "Shadows",
    ),
    shape=_PU_SHAPE,
    labelled_px=42776,
    description=(
        "ROSIS airborne scene of the University of Pavia, Italy, 1.3 m pixels; 103 of the 115 ROSIS bands "
        "(12 noisy bands removed). " + _ROSIS_NOTE
    ),
    citation=_PAVIA_CITATION,
    licence=_NO_LICENCE,
    how_to_obtain=_obtain(_PU_CUBE, _PU_GT),
)
_PC_CUBE, _PC_GT = MatVariable("Pavia.mat", "pavia"), MatVariable("Pavia_gt.mat", "pavia_gt")
_PC_SHAPE = (1096, 715, 102)
PAVIA_C_CARD = scene_card(
    "pavia_c",
    wavelengths_nm=evenly_spaced_nm(430.0, 860.0, 102),
    class_names=(
        "Water", "Trees", "Asphalt", "Self-Blocking Bricks", "Bitumen", "Tiles", "Shadows", "Meadows", "Bare Soil",
    ),
    shape=_PC_SHAPE,
    labelled_px=148152,
    description=(
        "ROSIS airborne scene of Pavia city centre, Italy, 1.3 m pixels, as distributed by GIC (1096 x 715 after "
        "removing the uninformative strip); 102 of the 115 ROSIS bands. " + _ROSIS_NOTE
    ),
    citation=_PAVIA_CITATION,
    licence=_NO_LICENCE,
    how_to_obtain=_obtain(_PC_CUBE, _PC_GT),
)

# --- Salinas ------------------------------------------------------------------------------------------------------
_SA_CUBE = MatVariable("Salinas_corrected.mat", "salinas_corrected")
_SA_GT = MatVariable("Salinas_gt.mat", "salinas_gt")
_SA_SHAPE = (512, 217, 204)
SALINAS_CARD = scene_card(
    "salinas",
    wavelengths_nm=aviris_nominal_nm(kept_channels(224, [(108, 112), (154, 167), 224])),
    class_names=(
        "Brocoli_green_weeds_1", "Brocoli_green_weeds_2", "Fallow", "Fallow_rough_plow", "Fallow_smooth", "Stubble",
        "Celery", "Grapes_untrained", "Soil_vinyard_develop", "Corn_senesced_green_weeds", "Lettuce_romaine_4wk",
        "Lettuce_romaine_5wk", "Lettuce_romaine_6wk", "Lettuce_romaine_7wk", "Vinyard_untrained",
        "Vinyard_vertical_trellis",
    ),
    shape=_SA_SHAPE,
    labelled_px=54129,
    description=(
        "AVIRIS scene of Salinas Valley, California, 3.7 m pixels: vegetables, bare soils, vineyards. The "
        "corrected cube keeps 204 of 224 channels ([108-112], [154-167] and 224 removed: water absorption). "
        + _AVIRIS_NOTE
    ),
    citation=f"Salinas scene, AVIRIS (NASA JPL); distributed by the Grupo de Inteligencia Computacional, {_GIC}",
    licence=_NO_LICENCE,
    how_to_obtain=_obtain(_SA_CUBE, _SA_GT),
)

# --- Kennedy Space Center and Botswana (Ham et al. 2005) ----------------------------------------------------------
_HAM_2005 = (
    "Ham, J., Chen, Y., Crawford, M. M., Ghosh, J. (2005). Investigation of the random forest framework for "
    "classification of hyperspectral data. IEEE Trans. Geoscience and Remote Sensing 43(3), 492-501"
)
_KSC_CUBE, _KSC_GT = MatVariable("KSC.mat", "KSC"), MatVariable("KSC_gt.mat", "KSC_gt")
_KSC_SHAPE = (512, 614, 176)
KSC_CARD = scene_card(
    "ksc",
    wavelengths_nm=evenly_spaced_nm(400.0, 2500.0, 176),
    class_names=(
        "Scrub", "Willow swamp", "Cabbage palm hammock", "Cabbage palm/oak hammock", "Slash pine",
        "Oak/broadleaf hammock", "Hardwood swamp", "Graminoid marsh", "Spartina marsh", "Cattail marsh", "Salt marsh",
        "Mud flats", "Water",
    ),
    shape=_KSC_SHAPE,
    labelled_px=5211,
    description=(
        "AVIRIS scene of the Kennedy Space Center, Florida (23 March 1996), 18 m pixels, wetland vegetation; 176 of "
        "224 channels kept after removing water-absorption and low-SNR bands. Wavelengths are nominal and coarse: "
        "evenly spaced over 400-2500 nm because the removed channels are not published with the file, so centres "
        "between the water gaps may be off by 100 nm or more; treat them as band order, not spectroscopy."
    ),
    citation=_HAM_2005,
    licence=_NO_LICENCE,
    how_to_obtain=_obtain(_KSC_CUBE, _KSC_GT),
)
# Bands kept out of Hyperion's 242: [10-55, 82-97, 102-119, 134-164, 187-220] (uncalibrated and water bands removed).
_BOTSWANA_BANDS = kept_channels(242, [(1, 9), (56, 81), (98, 101), (120, 133), (165, 186), (221, 242)])
_BW_CUBE, _BW_GT = MatVariable("Botswana.mat", "Botswana"), MatVariable("Botswana_gt.mat", "Botswana_gt")
_BW_SHAPE = (1476, 256, 145)
BOTSWANA_CARD = scene_card(
    "botswana",
    wavelengths_nm=hyperion_nm(_BOTSWANA_BANDS),
    class_names=(
        "Water", "Hippo grass", "Floodplain grasses 1", "Floodplain grasses 2", "Reeds", "Riparian", "Firescar",
        "Island interior", "Acacia woodlands", "Acacia shrublands", "Acacia grasslands", "Short mopane",
        "Mixed mopane", "Exposed soils",
    ),
    shape=_BW_SHAPE,
    labelled_px=3248,
    description=(
        "NASA EO-1 Hyperion scene of the Okavango Delta, Botswana (31 May 2001), 30 m pixels; 145 of 242 bands kept "
        "([10-55], [82-97], [102-119], [134-164], [187-220]). Wavelengths: linear within each Hyperion array "
        "between its published calibrated endpoints (VNIR 8-57: 426.82-925.41 nm, SWIR 77-224: 912.45-2395.50 nm)."
    ),
    citation=_HAM_2005,
    licence=_NO_LICENCE,
    how_to_obtain=_obtain(_BW_CUBE, _BW_GT),
)

# --- Houston 2013 -------------------------------------------------------------------------------------------------
_HU_CUBE, _HU_GT = MatVariable("Houston.mat", "Houston"), MatVariable("Houston_gt.mat", "Houston_gt")
_HU_SHAPE = (349, 1905, 144)
HOUSTON2013_CARD = scene_card(
    "houston2013",
    wavelengths_nm=evenly_spaced_nm(380.0, 1050.0, 144),
    class_names=(
        "Healthy grass", "Stressed grass", "Synthetic grass", "Trees", "Soil", "Water", "Residential", "Commercial",
        "Road", "Highway", "Railway", "Parking Lot 1", "Parking Lot 2", "Tennis Court", "Running Track",
    ),
    shape=_HU_SHAPE,
    labelled_px=15029,
    description=(
        "CASI-1500 scene of the University of Houston campus (June 2012), 2.5 m pixels, the hyperspectral part of "
        "the IEEE GRSS Data Fusion Contest 2013. Layout read here: Houston.mat (349 x 1905 x 144) and Houston_gt.mat "
        "holding the union of the contest's training and test ROIs (2832 + 12197 px, 0 = unlabelled); k-shot splits "
        "replace the contest split. Wavelengths are nominal: evenly spaced over 380-1050 nm."
    ),
    citation=(
        "Debes, C., et al. (2014). Hyperspectral and LiDAR data fusion: outcome of the 2013 GRSS data fusion "
        "contest. IEEE J. Selected Topics in Applied Earth Observations and Remote Sensing 7(6), 2405-2418"
    ),
    licence=(
        "IEEE GRSS Data Fusion Contest 2013 terms: research use after registration; acknowledge the Hyperspectral "
        "Image Analysis group and NCALM at the University of Houston"
    ),
    how_to_obtain=(
        "register for the 2013 IEEE GRSS Data Fusion Contest data (IEEE GRSS DASE website); save the CASI cube as "
        "Houston.mat (key 'Houston', 349 x 1905 x 144) and the training and test ROIs merged into one map as "
        "Houston_gt.mat (key 'Houston_gt', 0 = unlabelled, 1..15 = classes), as many public .mat copies already are; "
        "see docs/datasets/scenes.md"
    ),
)


@DATASETS.register_module(name="indian_pines")
class IndianPines(RealDatasetProvider):
    """Indian Pines (AVIRIS, corrected, 200 bands, 16 classes)."""

    card = INDIAN_PINES_CARD
    formats = _format("indian_pines", _IP_CUBE, _IP_GT, _IP_SHAPE)


@DATASETS.register_module(name="pavia_u")
class PaviaU(RealDatasetProvider):
    """Pavia University (ROSIS, 103 bands, 9 classes)."""

    card = PAVIA_U_CARD
    formats = _format("pavia_u", _PU_CUBE, _PU_GT, _PU_SHAPE)


@DATASETS.register_module(name="pavia_c")
class PaviaC(RealDatasetProvider):
    """Pavia Centre (ROSIS, 102 bands, 9 classes)."""

    card = PAVIA_C_CARD
    formats = _format("pavia_c", _PC_CUBE, _PC_GT, _PC_SHAPE)


@DATASETS.register_module(name="salinas")
class Salinas(RealDatasetProvider):
    """Salinas (AVIRIS, corrected, 204 bands, 16 classes)."""

    card = SALINAS_CARD
    formats = _format("salinas", _SA_CUBE, _SA_GT, _SA_SHAPE)


@DATASETS.register_module(name="ksc")
class KSC(RealDatasetProvider):
    """Kennedy Space Center (AVIRIS, 176 bands, 13 classes)."""

    card = KSC_CARD
    formats = _format("ksc", _KSC_CUBE, _KSC_GT, _KSC_SHAPE)


@DATASETS.register_module(name="botswana")
class Botswana(RealDatasetProvider):
    """Botswana (Hyperion, 145 bands, 14 classes)."""

    card = BOTSWANA_CARD
    formats = _format("botswana", _BW_CUBE, _BW_GT, _BW_SHAPE)


@DATASETS.register_module(name="houston2013")
class Houston2013(RealDatasetProvider):
    """Houston 2013 (CASI-1500, 144 bands, 15 classes)."""

    card = HOUSTON2013_CARD
    formats = _format("houston2013", _HU_CUBE, _HU_GT, _HU_SHAPE)
