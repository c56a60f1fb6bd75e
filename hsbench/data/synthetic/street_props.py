"""Objects standing in a street: trees, hedges, poles with signs, lamps and traffic lights, cars, pedestrians.

Each prop draws its parameters first and returns ``(distance, draw)``; all props are then painted far to near,
so nearer ones hide farther ones. A prop casts its shadow on the ground right after it is painted: a contact
shadow always (the ground under a car is dark even when overcast) and a sun-cast shadow, displaced sideways in
proportion to height, when the sun is out.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hsbench.data.synthetic.canvas import Canvas
from hsbench.data.synthetic.street import GROUND_PARTS, Street

__all__ = ["draw_props"]

Prop = tuple[float, Callable[[Canvas], None]]


def _ground_ellipse(street: Street, cx: float, cz: float, rx: float, rz: float) -> np.ndarray:
    return ((street.ground_x - cx) / rx) ** 2 + ((street.ground_z - cz) / rz) ** 2 < 1.0


def _cast(canvas: Canvas, street: Street, footprint: tuple[float, float, float, float], height_m: float) -> None:
    """Contact shadow on the footprint ``(x, z, half_x, half_z)``, plus the sun's shadow displaced by height."""
    x, z, rx, rz = footprint
    contact = 0.9 if street.direct_sun else 0.55
    canvas.cast_shadow(_ground_ellipse(street, x, z, rx, rz), contact, onto=GROUND_PARTS)
    if street.direct_sun:
        offset = street.shadow_dir * street.shadow_per_m * height_m / 2.0
        spread = rx + abs(offset)
        canvas.cast_shadow(_ground_ellipse(street, x + offset, z, spread, rz), 1.0, onto=GROUND_PARTS)


def _tree(rng: np.random.Generator, street: Street, x_t: float, z_t: float) -> Prop:
    trunk_h, trunk_w, radius = rng.uniform(1.8, 3.5), rng.uniform(0.2, 0.4), rng.uniform(1.5, 3.5)
    aspect, centre = rng.uniform(0.8, 1.3), trunk_h + 0.6 * radius
    wobble, phases = rng.uniform(0.05, 0.2, size=3), rng.uniform(0.0, 2 * np.pi, size=3)

    def draw(canvas: Canvas) -> None:
        x, y = street.camera.plane_z(z_t)
        dx, dy = x - x_t, y - centre
        angle = np.arctan2(dy, dx)
        edge = 1.0 + sum(a * np.cos((k + 2) * angle + p) for k, (a, p) in enumerate(zip(wobble, phases)))
        trunk = (np.abs(dx) < street.camera.half_width_m(trunk_w, z_t)) & (y >= 0.0) & (y < centre)
        canvas.draw(trunk, "trunk", "bark")
        canvas.draw((dx / radius) ** 2 + (dy / (radius * aspect)) ** 2 < edge**2, "tree", "tree", "tree")
        dappled = 0.55 + 0.45 * canvas.mix  # light through gaps in the crown
        if street.direct_sun:
            offset = street.shadow_dir * street.shadow_per_m * centre
            crown = _ground_ellipse(street, x_t + offset, z_t, radius, radius)
            canvas.cast_shadow(crown, dappled, onto=GROUND_PARTS)
        canvas.cast_shadow(_ground_ellipse(street, x_t, z_t, radius * 0.8, radius * 0.8), 0.5, onto=GROUND_PARTS)

    return z_t, draw


def _hedge(rng: np.random.Generator, street: Street, x_h: float) -> Prop:
    top, z0, z1 = rng.uniform(0.8, 1.6), rng.uniform(0.0, 10.0), rng.uniform(20.0, 80.0)

    def draw(canvas: Canvas) -> None:
        z, y = street.camera.plane_x(x_h)
        canvas.draw((z >= z0) & (z <= z1) & (y >= 0.0) & (y <= top), "hedge", "tree", "grass")

    return z1, draw


def _pole(rng: np.random.Generator, street: Street, side: int) -> Prop:
    kinds = ("sign", "traffic_light", "lamp")
    kind = kinds[rng.choice(3, p=[0.5, 0.25, 0.25] if street.kind == "urban" else [0.65, 0.05, 0.3])]
    x_p = street.road[(side + 1) // 2] + side * rng.uniform(0.3, 0.9)
    z_p = rng.uniform(4.0, 60.0)
    height = rng.uniform(*{"sign": (2.0, 3.0), "traffic_light": (2.6, 3.4), "lamp": (5.0, 8.0)}[kind])
    round_sign, size = rng.random() < 0.5, rng.uniform(0.3, 0.45)

    def draw(canvas: Canvas) -> None:
        cam = street.camera
        x, y = cam.plane_z(z_p)
        dx = x - x_p
        canvas.draw((np.abs(dx) < cam.half_width_m(0.12, z_p)) & (y >= 0.0) & (y <= height), "pole", "bare_metal")
        if kind == "sign":
            dy = y - height - size
            panel = dx**2 + dy**2 < size**2 if round_sign else (np.abs(dx) < size) & (np.abs(dy) < size)
            canvas.draw(panel, "sign", "sign_paint")
        elif kind == "traffic_light":
            box = (np.abs(dx) < cam.half_width_m(0.36, z_p)) & (y >= height) & (y <= height + 0.9)
            canvas.draw(box, "traffic_light", "dark_paint")
        else:
            arm = (dx * side <= 0.0) & (dx * side > -1.0) & (y >= height - 0.25) & (y <= height)
            canvas.draw(arm, "pole", "bare_metal")
        _cast(canvas, street, (x_p, z_p, 0.15, 0.3), height)

    return z_p, draw


def _rear_car(rng: np.random.Generator, street: Street, x_c: float, z_c: float) -> Prop:
    """A car ahead, seen from behind: body, tapered cabin with rear window, tyres, sometimes a metal bumper."""
    width, height = rng.uniform(1.65, 1.95), rng.uniform(1.9, 2.4) if rng.random() < 0.2 else rng.uniform(1.35, 1.75)
    metal_bumper = rng.random() < 0.4

    def draw(canvas: Canvas) -> None:
        x, y = street.camera.plane_z(z_c)
        ax, half = np.abs(x - x_c), width / 2.0
        taper = half * (0.92 - 0.12 * np.clip((y - 0.6 * height) / (0.4 * height), 0.0, 1.0))
        body = ((ax < half) & (y >= 0.3) & (y < 0.6 * height)) | ((ax < taper) & (y >= 0.6 * height) & (y < height))
        canvas.draw((ax > half - 0.32) & (ax < half - 0.02) & (y >= 0.0) & (y < 0.35), "tyre", "rubber")
        canvas.draw(body, "car_body", "car_paint")
        canvas.draw((ax < 0.72 * half) & (y > 0.66 * height) & (y < 0.93 * height), "car_window", "glass", "glass")
        if metal_bumper:
            canvas.draw((ax < half) & (y >= 0.3) & (y < 0.42), "car_metal", "bare_metal")
        _cast(canvas, street, (x_c, z_c + 2.2, half, 2.2), height)

    return z_c, draw


def _parked_car(rng: np.random.Generator, street: Street, side: int, z0: float) -> Prop:
    """A car parked at the kerb, seen from behind and from its inner side (wheels with metal rims)."""
    width, height, length = rng.uniform(1.65, 1.9), rng.uniform(1.35, 1.7), rng.uniform(3.8, 4.8)
    inner = street.road[(side + 1) // 2] - side * (width + 0.3)

    def draw(canvas: Canvas) -> None:
        z, y = street.camera.plane_x(inner)
        along = (z - z0) / length
        body = canvas.add("car_body", "car_paint")
        glass = canvas.add("car_window", "glass", "glass")
        side_body = ((along >= 0) & (along <= 1) & (y >= 0.3) & (y < 0.55 * height)) | (
            (along >= 0.22) & (along <= 0.85) & (y >= 0.55 * height) & (y < height)
        )
        canvas.paint(side_body, body)
        canvas.paint((along > 0.27) & (along < 0.8) & (y > 0.6 * height) & (y < 0.93 * height), glass)
        for centre in (0.18, 0.82):
            r2 = (z - z0 - centre * length) ** 2 + (y - 0.33) ** 2
            canvas.draw(r2 < 0.33**2, "tyre", "rubber")
            canvas.draw(r2 < 0.19**2, "car_metal", "bare_metal")
        x, y = street.camera.plane_z(z0)
        across = (x - inner) * side
        canvas.paint((across >= 0) & (across <= width) & (y >= 0.3) & (y < 0.95 * height), body)
        rear_window = (across >= 0.15 * width) & (across <= 0.85 * width) & (y > 0.62 * height) & (y < 0.9 * height)
        canvas.paint(rear_window, glass)
        _cast(canvas, street, (inner + side * width / 2, z0 + length / 2, width / 2, length / 2), height)

    return z0, draw


def _pedestrian(rng: np.random.Generator, street: Street, x_p: float, z_p: float) -> Prop:
    """A standing person facing towards or away from the camera: clothing, skin, hair."""
    height, back = rng.uniform(1.5, 1.9), rng.random() < 0.5

    def draw(canvas: Canvas) -> None:
        cam = street.camera
        x, y = cam.plane_z(z_p)
        ax = np.abs(x - x_p)
        legs = (ax < cam.half_width_m(0.32, z_p)) & (y >= 0.0) & (y < 0.47 * height)
        canvas.draw(legs, "person_clothing", "clothing")
        upper = (ax < cam.half_width_m(0.44, z_p)) & (y >= 0.45 * height) & (y < 0.82 * height)
        canvas.draw(upper | ((ax < 0.29) & (y >= 0.5 * height) & (y < 0.8 * height)), "person_clothing", "clothing")
        head = (ax / (0.075 * height)) ** 2 + ((y - 0.91 * height) / (0.085 * height)) ** 2 < 1.0
        hair = head & ((y > 0.93 * height) | back)
        canvas.draw(head & ~hair, "person_skin", "skin")
        canvas.draw(hair, "person_hair", "hair")
        _cast(canvas, street, (x_p, z_p, 0.3, 0.3), height)

    return z_p, draw


def _street_props(rng: np.random.Generator, street: Street) -> list[Prop]:
    props: list[Prop] = []
    busy = {"urban": 1.0, "suburban": 0.6, "rural": 0.3}[street.kind]
    for side in (-1, 1):
        edge, walk = street.road[(side + 1) // 2], street.walk[(side + 1) // 2]
        if rng.random() < {"urban": 0.4, "suburban": 0.8, "rural": 0.5}[street.kind]:
            reach = (1.0, 2.0) if street.kind == "urban" else (1.5, 8.0)
            for z_t in np.arange(rng.uniform(2.0, 15.0), 90.0, rng.uniform(6.0, 20.0)):
                props.append(_tree(rng, street, edge + side * rng.uniform(*reach), float(z_t)))
        if street.kind == "suburban" and rng.random() < 0.4:
            props.append(_hedge(rng, street, walk + side * 0.3))
        for _ in range(rng.poisson(1.2 * busy)):
            props.append(_pole(rng, street, side))
        if street.parking[(side + 1) // 2]:
            z0 = rng.uniform(2.0, 15.0)
            for _ in range(rng.integers(1, 6)):
                props.append(_parked_car(rng, street, side, z0))
                z0 += rng.uniform(5.0, 9.0)
        for _ in range(rng.poisson(1.0 * busy)):
            x_p = edge + side * rng.uniform(0.5, max(abs(walk - edge), 1.0))
            props.append(_pedestrian(rng, street, x_p, rng.uniform(4.0, 40.0)))
    left, right = street.carriageway
    lanes = [c for c in np.arange(-2.0, 2.0) * street.lane_m if left + 0.9 < c < right - 0.9]
    for _ in range(rng.poisson(2.5 * busy)):
        distance = 4.5 + 55.0 * rng.uniform() ** 1.5  # traffic ahead is more often near than far
        props.append(_rear_car(rng, street, float(rng.choice(lanes)), distance))
    return props


def draw_props(rng: np.random.Generator, canvas: Canvas, street: Street) -> None:
    """Place and paint every prop of a street, far to near."""
    for _, draw in sorted(_street_props(rng, street), key=lambda prop: -prop[0]):
        draw(canvas)
