"""Pinwheel: TFDS builder `pinwheel` and the generator `make_pinwheel`."""
