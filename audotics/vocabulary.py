"""The closed vocabularies of the event contract (docs/data-contracts.md): one definition for
the generator, the quality suites and the warehouse."""

EVENT_TYPES = ("play", "skip", "like", "playlist_add")
CONTEXTS = ("playlist", "search", "recommendation", "radio", "album")
DEVICES = ("ios", "android", "web", "desktop")
GENRES = (
    "pop", "rock", "hip-hop", "electronic", "jazz", "classical",
    "r&b", "country", "latin", "metal", "folk", "indie",
)  # fmt: skip
