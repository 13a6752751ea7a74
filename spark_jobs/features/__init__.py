"""Feature transforms: user features, track features and user x track interactions as of a
snapshot date, each a pure function of silver DataFrames (see `snapshot` for the time rule)."""
