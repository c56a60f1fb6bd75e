"""Strategy plug-ins; each module registers one strategy in ``hsbench.registry.STRATEGIES``."""
