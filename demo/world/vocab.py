"""The closed vocabularies of the demo world and the numbers that give it its character: genres
with their sound, countries, devices, listening contexts and the words names are made of."""

from __future__ import annotations

import numpy as np

# The contract vocabularies are shared with ingestion and the warehouse; the weights below are
# the world's own, in the same order.
from audotics.vocabulary import CONTEXTS, DEVICES, EVENT_TYPES, GENRES  # noqa: F401

# Share of artists (and baseline listening) per genre, in GENRES order.
GENRE_POPULARITY = np.array(
    [0.18, 0.13, 0.14, 0.10, 0.05, 0.04, 0.08, 0.06, 0.08, 0.04, 0.04, 0.06]
)

AUDIO_FEATURES: tuple[str, ...] = (
    "danceability", "energy", "valence", "tempo", "acousticness", "instrumentalness", "loudness",
)  # fmt: skip

# Mean audio features per genre (rows in GENRES order, columns in AUDIO_FEATURES order): what
# makes a jazz track sound like jazz. Tracks scatter around their genre's mean.
GENRE_SOUND = np.array(
    [
        [0.70, 0.70, 0.60, 118.0, 0.15, 0.02, -6.0],  # pop
        [0.50, 0.80, 0.50, 125.0, 0.10, 0.05, -6.0],  # rock
        [0.78, 0.65, 0.50, 95.0, 0.12, 0.02, -7.0],  # hip-hop
        [0.70, 0.85, 0.40, 126.0, 0.05, 0.60, -6.0],  # electronic
        [0.50, 0.40, 0.55, 110.0, 0.65, 0.45, -12.0],  # jazz
        [0.25, 0.20, 0.30, 100.0, 0.92, 0.88, -20.0],  # classical
        [0.68, 0.55, 0.55, 100.0, 0.20, 0.03, -7.0],  # r&b
        [0.58, 0.65, 0.60, 115.0, 0.30, 0.02, -7.0],  # country
        [0.75, 0.75, 0.72, 105.0, 0.20, 0.02, -5.0],  # latin
        [0.38, 0.93, 0.30, 140.0, 0.02, 0.20, -5.0],  # metal
        [0.48, 0.35, 0.48, 112.0, 0.75, 0.10, -12.0],  # folk
        [0.55, 0.60, 0.45, 120.0, 0.30, 0.15, -8.0],  # indie
    ]
)
SOUND_SPREAD = np.array([0.10, 0.10, 0.12, 15.0, 0.10, 0.10, 2.5])
SOUND_LOW = np.array([0.0, 0.0, 0.0, 50.0, 0.0, 0.0, -40.0])
SOUND_HIGH = np.array([1.0, 1.0, 1.0, 220.0, 1.0, 1.0, -0.5])

# Typical track length per genre in seconds (classical and electronic run long).
GENRE_DURATION_S = np.array([205, 235, 200, 300, 330, 480, 220, 200, 210, 280, 220, 225])

COUNTRIES: tuple[str, ...] = (
    "US", "GB", "DE", "BR", "MX", "FR", "SE", "JP", "IN", "ES", "CA", "AU", "NL", "IT", "KR",
)  # fmt: skip
COUNTRY_WEIGHTS = np.array(
    [0.25, 0.08, 0.08, 0.08, 0.06, 0.06, 0.04, 0.06, 0.06, 0.05, 0.04, 0.04, 0.03, 0.04, 0.03]
)

DEVICE_WEIGHTS = np.array([0.35, 0.40, 0.10, 0.15])

CONTEXT_WEIGHTS = np.array([0.28, 0.10, 0.20, 0.20, 0.22])
PLAYLIST_CONTEXT = CONTEXTS.index("playlist")
RECOMMENDATION_CONTEXT = CONTEXTS.index("recommendation")
RADIO_CONTEXT = CONTEXTS.index("radio")

PLAY, SKIP, LIKE, PLAYLIST_ADD = range(len(EVENT_TYPES))

# Share of the day's listening per UTC hour: a night trough and an evening peak.
HOURLY_ACTIVITY = np.array(
    [
        2.0, 1.4, 1.0, 0.8, 0.7, 0.8, 1.3, 2.4, 3.4, 3.8, 3.9, 4.0,
        4.3, 4.4, 4.3, 4.4, 4.8, 5.4, 6.2, 6.8, 6.9, 6.2, 4.8, 3.2,
    ]
)  # fmt: skip

ADJECTIVES: tuple[str, ...] = (
    "blue", "golden", "silent", "electric", "velvet", "wild", "broken", "crimson", "neon",
    "hidden", "lonely", "bright", "midnight", "paper", "silver", "burning", "quiet", "lucky",
    "frozen", "distant", "sweet", "cosmic", "wandering", "restless", "gentle", "hollow",
)  # fmt: skip
NOUNS: tuple[str, ...] = (
    "river", "heart", "city", "dream", "fire", "ocean", "shadow", "garden", "highway", "moon",
    "echo", "storm", "mirror", "signal", "harbor", "forest", "engine", "letter", "window",
    "horizon", "satellite", "canyon", "lantern", "circle", "summer", "thunder",
)  # fmt: skip
FIRST_NAMES: tuple[str, ...] = (
    "Ada", "Leo", "Mia", "Noah", "Zoe", "Kai", "Lena", "Omar", "Ines", "Ravi", "Yuki", "Sofia",
    "Jonas", "Ana", "Malik", "Elif", "Marco", "Priya", "Theo", "Nina", "Diego", "Hana", "Finn",
)  # fmt: skip
LAST_NAMES: tuple[str, ...] = (
    "Reyes", "Novak", "Lind", "Okafor", "Sato", "Moreau", "Kim", "Silva", "Berg", "Costa",
    "Haas", "Ivanova", "Mendes", "Park", "Rossi", "Shah", "Walsh", "Young", "Zeller", "Cruz",
)  # fmt: skip
PLAYLIST_MOODS: tuple[str, ...] = (
    "Chill", "Late Night", "Workout", "Focus", "Party", "Sunday Morning", "Road Trip",
    "Rainy Day", "Deep", "Essential", "Throwback", "Fresh",
)  # fmt: skip
EMAIL_DOMAINS: tuple[str, ...] = ("example.com", "example.org", "example.net")
