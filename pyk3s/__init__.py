from pyk3s.k3s.version import PYK3S_VERSION as __version__

__all__ = ["__version__"]
