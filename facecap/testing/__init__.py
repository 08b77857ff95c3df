"""Helpers for tests, benchmarks and probes: synthetic scenes, board images, the Rackovic benchmark's
metrics and the evidence probe. Nothing in the facecap commands imports them."""
