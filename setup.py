"""Installs tfdecomp, its entry points (`trainers`) and export tools (`savedmodels`)."""

import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent

INSTALL_REQUIRES = [
    "tensorflow>=2.16",
    # TFP refuses to import without the tf-keras package, even for tfp.distributions.
    "tensorflow-probability[tf]>=0.24",
    "keras>=3",
    "tensorflow-datasets>=4.9",
    # TFDS imports importlib_resources when it prepares a data set but does not install it: the
    # first run on a new machine (an empty data directory) fails without it.
    "importlib_resources",
    # TF 2.21 no longer installs TensorBoard; tf.summary.image/histogram need it.
    "tensorboard",
    "numpy",
    "scipy",
    "absl-py",
    "scikit-learn",
    "threadpoolctl",  # single-threaded BLAS around scikit-learn fits in the metrics
    "numba",  # compiles the gradient-boosted trees of the DCI metric (tfdecomp.metrics.gbt)
    "matplotlib",
    "h5py",
    # tfdecomp-serve: the ASGI framework and server behind the TF Serving-compatible REST API.
    "starlette>=0.37",
    "uvicorn>=0.29",
    "orjson>=3.8",  # request/response JSON of tfdecomp-serve (5x the standard library's speed)
]

EXTRAS_REQUIRE = {
    # tfds.testing imports dill, which TFDS does not install.
    "test": ["pytest", "dill"],
}

setup(
    name="tfdecomp",
    version="0.1.0",
    description=(
        "Decomposition VAEs (Mathieu, Rainforth, Siddharth & Teh, ICML 2019) "
        "in TensorFlow, Keras 3 and TensorFlow Probability."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["tfdecomp", "tfdecomp.*", "trainers", "trainers.*",
                                    "savedmodels", "savedmodels.*"]),
    include_package_data=True,
    package_data={"tfdecomp": ["datasets/*/dummy_data/*"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={
        "console_scripts": [
            "tfdecomp-train=trainers.train:run",
            "tfdecomp-evaluate=trainers.evaluate:run",
            "tfdecomp-sweep=trainers.sweep:run",
            "tfdecomp-reproduce=trainers.reproduce:run",
            "tfdecomp-export=trainers.export:run",
            "tfdecomp-serve=trainers.serve:run",
            "tfdecomp-plot=trainers.plot:run",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
