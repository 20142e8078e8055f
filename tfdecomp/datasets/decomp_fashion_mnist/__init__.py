"""Fashion-MNIST from local IDX files as TFDS builder `decomp_fashion_mnist`."""
