"""Pixel neighbourhoods ("patches") of hyperspectral cubes, for the patch classifiers of the HSI literature.

Patch networks (DeepHyperX style) label one pixel from the ``s x s`` window centred on it. At image borders the
window is completed by reflect padding, as the field's reference code does, so a border pixel sees mirrored
context instead of zeros. ``torch``'s reflect padding needs a pad smaller than the image side; images too small
for that (a 2x2 image with a 5x5 window) are replicate padded instead.

Patches are strided views of the padded cube (``Tensor.unfold``), so only the patches that are asked for are
materialised: :func:`iter_patches` walks a whole image in chunks, which keeps dense prediction on a 100x100 scene
at ``chunk`` patches in memory instead of ``H * W``.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from hsbench.errors import ConfigError

__all__ = ["check_patch_size", "pad_for_patches", "patches_around", "iter_patches"]


def check_patch_size(patch_size: int, *, minimum: int = 1, network: str = "patch extraction") -> int:
    """``patch_size`` if it is an odd integer ``>= minimum``; a :class:`ConfigError` naming ``network`` otherwise
    (an even window has no centre pixel)."""
    if isinstance(patch_size, bool) or not isinstance(patch_size, int):
        raise ConfigError(f"{network}: patch_size must be an odd integer, got {patch_size!r}")
    if patch_size < minimum:
        raise ConfigError(
            f"{network}: patch_size {patch_size} is too small; it needs at least {minimum} for its kernels"
        )
    if patch_size % 2 == 0:
        raise ConfigError(f"{network}: patch_size must be odd so that the window has a centre pixel, got {patch_size}")
    return patch_size


def pad_for_patches(cube: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``cube (N, C, H, W)`` padded by ``patch_size // 2`` on every side: reflect where both sides are longer than
    the pad, replicate otherwise (the whole cube uses one mode)."""
    if cube.dim() != 4:
        raise ValueError(f"expected a cube (N, C, H, W), got shape {tuple(cube.shape)}")
    check_patch_size(patch_size)
    pad = patch_size // 2
    if pad == 0:
        return cube
    mode = "reflect" if pad < min(cube.shape[-2:]) else "replicate"
    return F.pad(cube, (pad, pad, pad, pad), mode=mode)


def _windows(padded: torch.Tensor, patch_size: int) -> torch.Tensor:
    """A view ``(N, C, H, W, s, s)`` of every window of a padded cube (no copy)."""
    return padded.unfold(2, patch_size, 1).unfold(3, patch_size, 1)


def patches_around(
    cube: torch.Tensor,
    patch_size: int,
    rows: torch.Tensor | None = None,
    cols: torch.Tensor | None = None,
    *,
    images: torch.Tensor | None = None,
) -> torch.Tensor:
    """The ``patch_size x patch_size`` neighbourhoods ``(P, C, s, s)`` of pixels of ``cube (N, C, H, W)``.

    Without coordinates: every pixel, ``P = N * H * W``, row-major over ``(n, h, w)`` (this materialises all
    patches; use :func:`iter_patches` for whole images). With ``rows`` and ``cols`` (1-D, equal length ``Q``): the
    pixels at those coordinates, in every image (``P = N * Q``, ordered ``(n, q)``), or, when ``images`` is given
    too, pixel ``q`` of image ``images[q]`` only (``P = Q``), which is how labelled pixels are gathered for
    training. Border windows are reflect padded (replicate when the image is smaller than the pad).
    """
    if (rows is None) != (cols is None):
        raise ValueError("give both rows and cols, or neither")
    windows = _windows(pad_for_patches(cube, patch_size), patch_size)
    n, c, h, w = cube.shape
    if rows is None:
        return windows.permute(0, 2, 3, 1, 4, 5).reshape(n * h * w, c, patch_size, patch_size)
    rows, cols = torch.as_tensor(rows, device=cube.device), torch.as_tensor(cols, device=cube.device)
    if rows.dim() != 1 or rows.shape != cols.shape:
        raise ValueError(f"rows and cols must be 1-D and of equal length, got {tuple(rows.shape)}, {tuple(cols.shape)}")
    if rows.numel() and (rows.min() < 0 or rows.max() >= h or cols.min() < 0 or cols.max() >= w):
        raise ValueError(f"pixel coordinates out of range for an image of {h}x{w}")
    if images is not None:
        images = torch.as_tensor(images, device=cube.device)
        if images.shape != rows.shape:
            raise ValueError("images must have the same length as rows and cols")
        return windows[images, :, rows, cols]  # advanced indices first: (Q, C, s, s)
    return windows[:, :, rows, cols].permute(0, 2, 1, 3, 4).reshape(n * rows.numel(), c, patch_size, patch_size)


def iter_patches(cube: torch.Tensor, patch_size: int, chunk: int) -> Iterator[torch.Tensor]:
    """Every pixel's patch of ``cube (N, C, H, W)``, in chunks of at most ``chunk`` patches ``(p, C, s, s)``,
    row-major over ``(n, h, w)``; concatenated they equal ``patches_around(cube, patch_size)``. The cube is padded
    once; each chunk is gathered from the padded view, so at most ``chunk`` patches exist at a time."""
    if chunk < 1:
        raise ConfigError(f"the patch chunk size must be >= 1, got {chunk}")
    windows = _windows(pad_for_patches(cube, patch_size), patch_size)
    n, _, h, w = cube.shape
    total = n * h * w
    for start in range(0, total, chunk):
        flat = torch.arange(start, min(start + chunk, total), device=cube.device)
        yield windows[flat // (h * w), :, (flat // w) % h, flat % w]
