"""Garbage-collector settings for a long-running service's hot path, once it has started."""

from __future__ import annotations

import gc
import os

# LIANDONG_GC_YOUNG_THRESHOLD: allocations between collections of the youngest generation.
YOUNG_GC_THRESHOLD = int(os.environ.get("LIANDONG_GC_YOUNG_THRESHOLD", "50000"))


def settle_heap(young_threshold: int = YOUNG_GC_THRESHOLD) -> None:
    """Once started (all imported, registry loaded): what is alive now is frozen
    (``gc.freeze``: the full collections no longer walk the start-up heap of modules, protobuf
    descriptors and the registry), and the youngest generation is collected every
    ``young_threshold`` allocations instead of 700.

    Why (timed with ``gc.callbacks``): the collector took ~20 % of the gateway's CPU in
    ``bench/gateway_load.py`` (frames in flight keep thousands of young objects alive, so
    frequent young collections kept re-walking them, and each full collection walked the
    start-up heap); in ``bench/e2e_stack.py`` (600 loggers) ~14 % of the alerts worker's
    (mostly full collections over the outlets' states, each a pause of ~0.2 s) -> ~4.5 %, and
    in the gateway still ~10 % at 10,000 -> ~2.3 % at 50,000. The older generations are
    collected after as many younger collections as before, so full collections come that much
    less often too. Memory costs: garbage in reference cycles lives up to ``young_threshold``
    allocations longer (a few MB at most); the frozen start-up objects are never freed (they
    live as long as the process anyway)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, *gc.get_threshold()[1:])
