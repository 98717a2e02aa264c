"""Cost model: energy per action (bit-width and technology scaling, with sources), the area
proxy, and the price of numeric formats (zero-points, per-channel requantization, power units).

Kept import-light: ``accelsim.config`` imports ``accelsim.cost.tables`` (pure data) to
validate names, so this package must not import config at import time.
"""
