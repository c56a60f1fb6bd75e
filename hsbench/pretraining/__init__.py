"""Self-supervised pretraining recipes whose results go to the zoo."""

from hsbench.pretraining.spectral_mae import SpectralMAERecipe, pretrain_spectral_mae, pretrained_spectral_fm

__all__ = ["SpectralMAERecipe", "pretrain_spectral_mae", "pretrained_spectral_fm"]
