"""Published serving points shipped as data (``published.toml``), read by ``placer.calibrate_points``."""
