"""Demo and test data the project makes itself: the seeded music world (`demo.world`) and
synthetic interaction matrices for the recommender's benchmarks and tests."""
