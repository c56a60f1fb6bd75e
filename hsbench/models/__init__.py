"""Reusable networks, registered in ``MODELS``."""
