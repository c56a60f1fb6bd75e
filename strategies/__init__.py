"""Strategy plug-ins; each module registers one strategy in ``hsbench.registry.STRATEGIES``."""

from strategies import cross_domain, cross_modality, in_domain, s2former

__all__ = ["cross_domain", "cross_modality", "in_domain", "s2former"]
