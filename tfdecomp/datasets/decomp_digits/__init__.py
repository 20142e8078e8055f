"""scikit-learn's handwritten digits as TFDS builder `decomp_digits`."""
