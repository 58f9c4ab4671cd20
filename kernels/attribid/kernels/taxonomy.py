"""Names the data uses: channels, interactions, devices, product categories.

Channel names are free strings; these are the defaults (the paper's seven).
A model carries its own channel list in its metadata, and that list wins.
"""
from __future__ import annotations

DEFAULT_CHANNELS: tuple[str, ...] = (
    "search", "display", "social", "email", "affiliate", "direct", "offline",
)
#: featurizer slots: a model may know at most this many channels
MAX_CHANNELS = 16

#: interaction codes used everywhere (0 is never valid data)
IMPRESSION = 1
CLICK = 2
INTERACTIONS: dict[str, int] = {"impression": IMPRESSION, "click": CLICK}

#: device codes; 0 = unknown
DEVICES: dict[str, int] = {"unknown": 0, "desktop": 1, "mobile": 2, "tablet": 3}

PRODUCT_CATEGORIES: tuple[str, ...] = (
    "coffee_makers", "blenders", "toasters", "air_fryers",
    "food_processors", "electric_kettles", "microwave_ovens",
)
#: category code for "unknown"; known categories are 0..6
UNKNOWN_CATEGORY = len(PRODUCT_CATEGORIES)


def category_code(name: str) -> int:
    """Code of a product category name; unknown or empty names map to UNKNOWN_CATEGORY.

    >>> category_code("toasters"), category_code("")
    (2, 7)
    """
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    try:
        return PRODUCT_CATEGORIES.index(key)
    except ValueError:
        return UNKNOWN_CATEGORY
