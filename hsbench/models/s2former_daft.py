"""Diffusion-aligned fine-tuning (DAFT) of an S2Former segmenter: an EMA teacher and noised-feature alignment.

The paper says only that DAFT aligns "semantic evolution trajectories" through a teacher-student structure. Our
reading, kept small enough to train on a CPU:

* the forward diffusion process ``x_t = sqrt(abar_t) x + sqrt(1 - abar_t) eps`` with the cosine schedule of
  Nichol & Dhariwal (2021) defines a trajectory from the clean tile to noise;
* the student encodes the tile at a timestep ``t_s`` drawn per sample in ``[1, max_t]``, the teacher the *same*
  noise draw at the lower ``t_t = floor(teacher_ratio * t_s)``, i.e. an earlier point of the same trajectory;
* the alignment loss, ``1 - cosine`` between their per-token features (all readable pixels of the tile, labelled
  or not; on a scene, val, test and guard pixels are blanked in the input and each token is weighted by its share
  of readable pixels, so the forbidden ones are left out), teaches the student to map a noisier state onto the
  representation of a cleaner one: a denoising consistency in feature space that uses unlabelled pixels, which is
  what makes it useful with few labels;
* the teacher starts as a copy of the pretrained encoder and follows the student by an exponential moving
  average, so early on it anchors the student to the pretrained representation (a guard against few-label
  over-fitting), later it is a smoothed student (mean teacher, Tarvainen & Valpola 2017);
* the alignment weight rises with the mean-teacher sigmoid ramp ``exp(-5 (1 - r)^2)`` over the first
  ``ramp_fraction`` of the steps, so the untrained head's gradients and the alignment do not fight at the start.

:class:`DaftSegmenter` plugs into the shared engine unchanged: in training mode its forward returns
:class:`DaftOutput` (clean-input logits plus the weighted alignment term) and :func:`daft_loss` adds the
cross-entropy; in eval mode it is the student. The teacher's EMA step runs at the start of each training forward,
i.e. right after the previous optimiser step.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from hsbench.engine import masked_cross_entropy
from hsbench.errors import ConfigError
from hsbench.models._padding import pad_to_multiple
from hsbench.models.s2former import S2FormerSegmenter

__all__ = ["DaftConfig", "DaftOutput", "DaftSegmenter", "cosine_alpha_bar", "daft_loss"]


@dataclass(frozen=True)
class DaftConfig:
    """DAFT settings (defaults and reasons in ``docs/strategies/s2former.md``).

    Attributes:
        total_steps: optimiser steps of the whole fine-tuning (for the weight ramp).
        timesteps: diffusion steps ``T`` of the cosine schedule.
        max_t: largest student timestep (``abar`` about 0.79 at 300 of 1000: noise std 0.46 on standardised
            inputs, strong but not destroying).
        teacher_ratio: teacher timestep as a fraction of the student's (< 1: the teacher sees less noise).
        ema_momentum: teacher EMA momentum per step.
        alignment_weight: weight of the alignment term after the ramp.
        ramp_fraction: fraction of the steps over which the weight ramps up.
    """

    total_steps: int
    timesteps: int = 1000
    max_t: int = 300
    teacher_ratio: float = 0.5
    ema_momentum: float = 0.99
    alignment_weight: float = 1.0
    ramp_fraction: float = 0.3

    def __post_init__(self) -> None:
        if not 0 < self.max_t <= self.timesteps:
            raise ConfigError(f"daft max_t must lie in (0, timesteps], got {self.max_t}")
        if not 0.0 <= self.teacher_ratio < 1.0:
            raise ConfigError(f"daft teacher_ratio must lie in [0, 1): the teacher sees less noise, got {self}")
        if not 0.0 <= self.ema_momentum < 1.0 or self.total_steps < 1:
            raise ConfigError("daft ema_momentum must lie in [0, 1) and total_steps be >= 1")


def cosine_alpha_bar(t: torch.Tensor, timesteps: int, offset: float = 0.008) -> torch.Tensor:
    """Signal level ``abar_t`` of the cosine schedule (1 at ``t = 0``, near 0 at ``t = timesteps``)."""

    def f(step: torch.Tensor) -> torch.Tensor:
        return torch.cos((step / timesteps + offset) / (1 + offset) * math.pi / 2) ** 2

    return f(t.to(torch.float32)) / f(torch.zeros(()))


class DaftOutput(NamedTuple):
    """What :class:`DaftSegmenter` returns in training mode."""

    logits: torch.Tensor
    alignment: torch.Tensor
    """The alignment loss, already multiplied by the current ramped weight."""


class DaftSegmenter(nn.Module):
    """Student segmenter plus EMA teacher encoder.

    Args:
        student: the segmenter being fine-tuned (its encoder initialises the teacher).
        cfg: DAFT settings.
        generator: CPU generator for timesteps and noise (the run's ``augment`` stream).
    """

    def __init__(self, student: S2FormerSegmenter, cfg: DaftConfig, generator: torch.Generator) -> None:
        super().__init__()
        self.student, self.cfg, self.generator = student, cfg, generator
        self.teacher = copy.deepcopy(student.encoder).requires_grad_(False)
        self.steps_done = 0

    def forward(self, x: torch.Tensor, readable: torch.Tensor | None = None) -> torch.Tensor | DaftOutput:
        """Eval: the student's logits. Training: :class:`DaftOutput`, aligned over the ``readable`` ``(B, H, W)``
        pixels only (``None``: every pixel)."""
        if not self.training:
            return self.student(x)
        if self.steps_done > 0:
            self._ema_update()
        weight = self.alignment_weight(self.steps_done)
        self.steps_done += 1
        return DaftOutput(self.student(x), weight * self.alignment(x, readable))

    def alignment_weight(self, step: int) -> float:
        ramp_steps = self.cfg.ramp_fraction * self.cfg.total_steps
        progress = 1.0 if ramp_steps <= 0 else min(1.0, step / ramp_steps)
        return self.cfg.alignment_weight * math.exp(-5.0 * (1.0 - progress) ** 2)

    def alignment(self, x: torch.Tensor, readable: torch.Tensor | None = None) -> torch.Tensor:
        """``1 - cosine`` between student features at ``t_s`` and teacher features at ``t_t < t_s``.

        With ``readable`` ``(B, H, W)``, pixels outside it are blanked (0) and the mean runs over tokens weighted
        by their share of readable pixels: a token of forbidden pixels only adds nothing.
        """
        valid = self.student.band_valid
        patch = self.student.encoder.cfg.patch_size
        keep = None if readable is None else readable[:, None].to(x.dtype)
        x = pad_to_multiple(x * valid[:, None, None] * (1.0 if keep is None else keep), patch)
        n = x.shape[0]
        t_student = torch.randint(1, self.cfg.max_t + 1, (n,), generator=self.generator)
        t_teacher = torch.floor(self.cfg.teacher_ratio * t_student)
        noise = torch.randn(x.shape, generator=self.generator).to(x.device) * valid[:, None, None]
        student = self.student.encode(self._noised(x, noise, t_student)).features
        with torch.no_grad():
            teacher = self.teacher(self._noised(x, noise, t_teacher), valid).features
        distance = 1.0 - F.cosine_similarity(student, teacher, dim=1)
        if keep is None:
            return distance.mean()
        share = F.avg_pool2d(F.pad(keep, (0, x.shape[-1] - keep.shape[-1], 0, x.shape[-2] - keep.shape[-2])), patch)
        return (distance * share[:, 0]).sum() / share.sum().clamp_min(1e-6)

    def _noised(self, x: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        alpha_bar = cosine_alpha_bar(t, self.cfg.timesteps).to(x.device).view(-1, 1, 1, 1)
        return alpha_bar.sqrt() * x + (1.0 - alpha_bar).sqrt() * noise

    @torch.no_grad()
    def _ema_update(self) -> None:
        for teacher, student in zip(self.teacher.parameters(), self.student.encoder.parameters(), strict=True):
            teacher.lerp_(student.detach(), 1.0 - self.cfg.ema_momentum)


def daft_loss(ignore_index: int) -> Callable[[DaftOutput, torch.Tensor], torch.Tensor]:
    """Engine loss for :class:`DaftSegmenter`: masked cross-entropy on clean logits plus the alignment term."""
    cross_entropy = masked_cross_entropy(ignore_index)

    def loss(output: DaftOutput, target: torch.Tensor) -> torch.Tensor:
        return cross_entropy(output.logits, target) + output.alignment

    return loss
