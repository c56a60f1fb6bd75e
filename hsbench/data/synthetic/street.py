"""Driving scenes: a pinhole camera in a car looking down a street, in the spirit of HSI-Drive and HyKo2.

Everything is placed in metres in a street frame (``X`` to the right, ``Z`` forward, ``Y`` up, camera at
``X = 0`` about 1.3 m above the road) and rasterised through the camera, so sizes shrink with distance,
lane markings converge to the vanishing point, facades are vertical planes along the street and a car or a
person is a vertical plane facing the camera. Three kinds of street: urban (sidewalks and continuous facades),
suburban (lawns, low houses, more trees) and rural (verges, gravel shoulders and tree lines).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hsbench.data.synthetic.canvas import Canvas, smooth_noise

__all__ = ["draw_street", "StreetCamera", "Street", "GROUND_PARTS", "STREET_PARTS"]

GROUND_PARTS = ("road", "lane_mark", "sidewalk", "curb", "verge", "lawn", "shoulder")
"""Parts lying on the ground plane: the only ones that receive cast shadows from other objects."""
STREET_PARTS = GROUND_PARTS + (
    "sky", "facade", "window", "roof", "tree", "trunk", "hedge", "pole", "sign", "traffic_light",
    "car_body", "car_window", "car_metal", "tyre", "person_skin", "person_hair", "person_clothing",
)
"""Every part a street scene can contain (datasets map each to a class or to unlabelled)."""

_KINDS = ("urban", "suburban", "rural")
_FACADE_MATERIALS = ("concrete", "brick", "stone", "facade_paint")
_PARKING_LANE_M = 2.2


@dataclass(frozen=True)
class StreetCamera:
    """A level pinhole camera; maps pixels to metric coordinates on the ground and on vertical planes."""

    focal_px: float
    height_m: float
    horizon: float
    vx: float
    yy: np.ndarray
    xx: np.ndarray

    def ground(self) -> tuple[np.ndarray, np.ndarray]:
        """``(X, Z)`` of the ground point each pixel sees; NaN / inf above the horizon."""
        dy = self.yy - self.horizon
        z = np.where(dy > 0, self.focal_px * self.height_m / np.maximum(dy, 1e-9), np.inf)
        x = np.where(dy > 0, (self.xx - self.vx) * z / self.focal_px, np.nan)
        return x, z

    def plane_z(self, z: float) -> tuple[np.ndarray, np.ndarray]:
        """``(X, Y)`` on the vertical plane at distance ``z`` facing the camera (a car's back, a person)."""
        scale = z / self.focal_px
        return (self.xx - self.vx) * scale, self.height_m - (self.yy - self.horizon) * scale

    def plane_x(self, x: float) -> tuple[np.ndarray, np.ndarray]:
        """``(Z, Y)`` on the vertical plane ``X = x`` along the street (a facade); NaN where not visible."""
        dx = self.xx - self.vx
        z = np.where(dx * x > 0, self.focal_px * x / np.where(dx == 0, 1e-9, dx), np.nan)
        return z, self.height_m - (self.yy - self.horizon) * z / self.focal_px

    def half_width_m(self, width_m: float, z: float) -> float:
        """Half of ``width_m``, but at least half a pixel at distance ``z`` (thin poles stay visible)."""
        return max(width_m / 2.0, 0.5 * z / self.focal_px)


@dataclass(frozen=True)
class Street:
    """One street's geometry and sun, in metres.

    Attributes:
        kind: ``urban``, ``suburban`` or ``rural``.
        road: ``(left, right)`` road edges (kerbs), parking lanes included.
        parking: ``(left, right)`` whether a 2.2 m parking lane runs along that kerb.
        walk: ``(left, right)`` outer sidewalk edges (equal to the road edges where there is no sidewalk).
        facade: ``(left, right)`` facade planes, ``None`` for a side without buildings.
        lane_m: lane width.
        direct_sun: whether the sun is out (cast shadows are drawn).
        shadow_dir: -1 or +1, the lateral direction shadows fall.
        shadow_per_m: lateral shadow length per metre of height (low sun: long shadows).
    """

    camera: StreetCamera
    ground_x: np.ndarray
    ground_z: np.ndarray
    kind: str
    road: tuple[float, float]
    parking: tuple[bool, bool]
    walk: tuple[float, float]
    facade: tuple[float | None, float | None]
    lane_m: float
    direct_sun: bool
    shadow_dir: int
    shadow_per_m: float

    @property
    def on_ground(self) -> np.ndarray:
        """Pixels below the horizon (they see the ground plane)."""
        return np.isfinite(self.ground_z)

    @property
    def carriageway(self) -> tuple[float, float]:
        """Edges of the driving lanes: the road without its parking lanes."""
        return self.road[0] + _PARKING_LANE_M * self.parking[0], self.road[1] - _PARKING_LANE_M * self.parking[1]


def _draw_street(rng: np.random.Generator, canvas: Canvas, direct_sun: bool) -> Street:
    h, w = canvas.height, canvas.width
    camera = StreetCamera(
        focal_px=rng.uniform(0.8, 1.0) * w,
        height_m=rng.uniform(1.2, 1.5),
        horizon=rng.uniform(0.36, 0.48) * h,
        vx=rng.uniform(0.38, 0.62) * w,
        yy=canvas.yy,
        xx=canvas.xx,
    )
    kind = _KINDS[rng.choice(3, p=[0.45, 0.3, 0.25])]
    lane = rng.uniform(3.0, 3.6)
    lanes = (-(0.5 + rng.choice([1, 2], p=[0.7, 0.3])) * lane, (0.5 + rng.choice([0, 1], p=[0.8, 0.2])) * lane + 0.3)
    parking_p = {"urban": 0.6, "suburban": 0.4, "rural": 0.0}[kind]
    parking = (bool(rng.random() < parking_p), bool(rng.random() < parking_p))
    road = tuple(edge + sign * _PARKING_LANE_M * park for edge, sign, park in zip(lanes, (-1, 1), parking))
    has_walk = kind != "rural"
    walk = tuple(edge + sign * (rng.uniform(1.5, 4.0) if has_walk else 0.0) for edge, sign in zip(road, (-1, 1)))
    facade = tuple(_facade_plane(rng, kind, edge, sign) for edge, sign in zip(walk, (-1, 1)))
    ground_x, ground_z = camera.ground()
    return Street(
        camera=camera,
        ground_x=ground_x,
        ground_z=ground_z,
        kind=kind,
        road=road,  # type: ignore[arg-type]
        parking=parking,
        walk=walk,  # type: ignore[arg-type]
        facade=facade,  # type: ignore[arg-type]
        lane_m=lane,
        direct_sun=direct_sun,
        shadow_dir=int(rng.choice([-1, 1])),
        shadow_per_m=rng.uniform(0.3, 1.8),
    )


def _facade_plane(rng: np.random.Generator, kind: str, walk_edge: float, sign: int) -> float | None:
    """Where the buildings (or, rural, the tree line) stand on one side, or ``None`` for open land."""
    if kind == "urban":
        return walk_edge if rng.random() < 0.9 else None
    if kind == "suburban":
        return walk_edge + sign * rng.uniform(2.0, 8.0) if rng.random() < 0.7 else None
    return walk_edge + sign * rng.uniform(3.0, 25.0) if rng.random() < 0.7 else None


def _draw_sky(rng: np.random.Generator, canvas: Canvas, street: Street) -> None:
    """Sky with a hazy, whiter band above the horizon and, sometimes, clouds."""
    horizon = street.camera.horizon
    haze_px = rng.uniform(0.3, 1.0) * horizon
    gradient = np.clip(1.0 - (horizon - canvas.yy) / haze_px, 0.0, 1.0) ** 1.5
    canvas.paint(np.ones_like(canvas.yy, dtype=bool), canvas.add("sky", "sky", "haze"), mix=gradient)
    for _ in range(rng.integers(0, 4) if rng.random() < 0.5 else 0):
        cy, cx = rng.uniform(0.05, 0.8) * horizon, rng.uniform(0, canvas.width)
        ry, rx = rng.uniform(1.5, 0.3 * horizon), rng.uniform(4.0, 0.35 * canvas.width)
        cloud = ((canvas.yy - cy) / ry) ** 2 + ((canvas.xx - cx) / rx) ** 2
        canvas.draw(cloud + 0.3 * smooth_noise(rng, canvas.yy.shape, 2.0) < 1.0, "sky", "cloud", "haze")


def _draw_ground(rng: np.random.Generator, canvas: Canvas, street: Street) -> None:
    """Verge, shoulders, lawns, sidewalks with kerbs, and the road."""
    x, ground = street.ground_x, street.on_ground
    canvas.draw(ground, "verge", "grass", str(rng.choice(["soil", "dry_grass"])))
    (road_l, road_r), (walk_l, walk_r) = street.road, street.walk
    if street.kind == "rural":
        width = rng.uniform(0.3, 1.5) if rng.random() < 0.6 else 0.0
        canvas.draw(ground & (x > road_l - width) & (x < road_r + width), "shoulder", "soil")
    else:
        if street.kind == "suburban":
            for edge, plane in zip((walk_l, walk_r), street.facade):
                if plane is not None:
                    canvas.draw(ground & (x >= min(edge, plane)) & (x <= max(edge, plane)), "lawn", "grass")
        paving = str(rng.choice(["concrete", "stone", "brick"], p=[0.5, 0.35, 0.15]))
        canvas.draw(ground & (x > walk_l) & (x < walk_r), "sidewalk", paving)
        curb = rng.uniform(0.12, 0.25)
        canvas.draw(ground & ((np.abs(x - road_l) < curb) | (np.abs(x - road_r) < curb)), "curb", "concrete")
    canvas.draw(ground & (x > road_l) & (x < road_r), "road", "asphalt")
    _draw_lane_marks(rng, canvas, street)


def _draw_lane_marks(rng: np.random.Generator, canvas: Canvas, street: Street) -> None:
    """Edge lines, dashed lane dividers and sometimes a zebra crossing, as one worn-paint object."""
    x, z, ground = street.ground_x, street.ground_z, street.on_ground
    (road_l, road_r), lane = street.road, street.lane_m
    width = rng.uniform(0.1, 0.16)
    visible = ground & (z < street.camera.focal_px * width / 0.6)  # thinner than ~0.6 px: lost in the blur
    dash_period, dash_duty, dash_phase = rng.uniform(9.0, 14.0), rng.uniform(0.3, 0.5), rng.uniform()
    dashes = np.mod(np.where(ground, z, 0.0) / dash_period + dash_phase, 1.0) < dash_duty
    marks = np.zeros_like(ground)
    lanes_l, lanes_r = street.carriageway
    for edge in (lanes_l + 0.25, lanes_r - 0.45):
        if rng.random() < 0.8:
            marks |= np.abs(x - edge) < width / 2
    dividers = np.arange(-0.5 * lane, lanes_l + 0.5 * lane, -lane).tolist() + ([0.5 * lane] if lanes_r > lane else [])
    for i, divider in enumerate(dividers):
        solid = i == 0 and rng.random() < 0.3
        marks |= (np.abs(x - divider) < width / 2) & (solid | dashes)
    if street.kind == "urban" and rng.random() < 0.25:
        start = rng.uniform(5.0, 25.0)
        stripes = np.mod(np.where(ground, x, 0.0) + rng.uniform(), 1.0) < 0.5  # 0.5 m stripes, 0.5 m gaps
        zebra = (z > start) & (z < start + rng.uniform(3.0, 5.0)) & stripes
        marks |= zebra & (x > road_l + 0.3) & (x < road_r - 0.3)
    canvas.draw(marks & visible & (x > road_l) & (x < road_r), "lane_mark", "lane_paint")


def _draw_backdrop(rng: np.random.Generator, canvas: Canvas, street: Street) -> None:
    """Whatever closes the street far away (a tree line or buildings), so road never meets sky directly."""
    distance = rng.uniform(60.0, 200.0)
    x, y = street.camera.plane_z(distance)
    top = rng.uniform(3.0, 14.0) * (1.0 + 0.3 * np.sin(x / rng.uniform(4.0, 15.0) + rng.uniform(0, 6.3)))
    mask = (y >= 0.0) & (y <= top) & (canvas.yy <= street.camera.horizon + 1.0)
    if street.kind == "urban" and rng.random() < 0.6:
        canvas.draw(mask, "facade", str(rng.choice(_FACADE_MATERIALS)), "concrete")
    else:
        canvas.draw(mask, "tree", "tree", "tree")


def _draw_facades(rng: np.random.Generator, canvas: Canvas, street: Street, side: int) -> None:
    """Buildings along one side (or a tree line on rural roads); self-shadowed and shadow-casting on the sun side."""
    plane = street.facade[(side + 1) // 2]
    if plane is None:
        return
    z, y = street.camera.plane_x(plane)
    first = canvas.num_objects
    if street.kind == "rural":
        top = rng.uniform(6.0, 14.0) * (1.0 + 0.25 * np.sin(z / rng.uniform(3.0, 9.0) + rng.uniform(0.0, 6.3)))
        blocks = [(canvas.draw((y >= 0) & (y <= top) & (z > 0), "tree", "tree", "tree"), 0.0, np.inf, 10.0)]
    else:
        blocks = _draw_buildings(rng, canvas, street, z, y)
    sun_side = side == -street.shadow_dir
    if street.direct_sun and sun_side:
        canvas.cast_shadow(canvas.object_map >= first)  # facades facing away from the sun
        gx, gz = street.ground_x, street.ground_z
        for _, z0, z1, height in blocks:
            reach = plane + street.shadow_dir * street.shadow_per_m * height
            band = (gx - plane) * side <= 0.0  # street side of the facade
            band &= (gx - reach) * street.shadow_dir <= 0.0
            canvas.cast_shadow(band & (gz >= z0) & (gz <= z1), 1.0, onto=GROUND_PARTS)


def _draw_buildings(
    rng: np.random.Generator, canvas: Canvas, street: Street, z: np.ndarray, y: np.ndarray
) -> list[tuple[int, float, float, float]]:
    """Facade segments with windows and sometimes a tiled roof band; returns ``(object, z0, z1, height)``."""
    tall = (6.0, 22.0) if street.kind == "urban" else (3.5, 8.0)
    start, end = rng.uniform(-5.0, 6.0), rng.uniform(50.0, 150.0)
    blocks = []
    while start < end:
        length = rng.uniform(8.0, 30.0)
        if rng.random() < 0.15:  # a side street: a gap in the facades
            start += rng.uniform(6.0, 14.0)
            continue
        height = rng.uniform(*tall)
        inside = (z >= start) & (z < start + length) & (y >= 0.0)
        obj = canvas.draw(inside & (y <= height), "facade", str(rng.choice(_FACADE_MATERIALS)))
        blocks.append((obj, start, start + length, height))
        spacing, floor = rng.uniform(2.5, 4.0), rng.uniform(2.8, 3.4)
        across = np.mod((z - start) / spacing, 1.0) < rng.uniform(0.35, 0.6)
        up = np.mod((y - 0.9) / floor, 1.0)
        windows = inside & across & (y > 0.9) & (y < height - 0.6) & (up > 0.25) & (up < rng.uniform(0.7, 0.85))
        canvas.draw(windows, "window", "glass", "glass")
        if rng.random() < 0.5:
            canvas.draw(inside & (y > height) & (y <= height + rng.uniform(0.8, 3.0)), "roof", "roof_tile")
        start += length
    return blocks


def draw_street(rng: np.random.Generator, canvas: Canvas, *, direct_sun: bool) -> Street:
    """Draw a street's geometry and background (sky, ground, far backdrop, facades); returns the geometry.

    Args:
        rng: the image's random stream.
        canvas: where to paint.
        direct_sun: whether the sun is out; without it only contact shadows are drawn later.
    """
    street = _draw_street(rng, canvas, direct_sun)
    _draw_sky(rng, canvas, street)
    _draw_ground(rng, canvas, street)
    _draw_backdrop(rng, canvas, street)
    for side in (-1, 1):
        _draw_facades(rng, canvas, street, side)
    return street
