"""placer: layer and KV-cache placement for wafer-scale AI hardware."""

__version__ = "0.1.0"
