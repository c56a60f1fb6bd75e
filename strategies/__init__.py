"""Strategy plug-ins; each module registers one strategy in ``hsbench.registry.STRATEGIES``."""

from strategies import in_domain

__all__ = ["in_domain"]
