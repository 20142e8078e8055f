"""tfdecomp.tensorboard: what a run's TensorBoard holds, read back from the event files."""

import collections
import glob
import math
import os

import numpy as np
import pytest

import keras

from tfdecomp import configs
from tfdecomp import priors
from tfdecomp import tensorboard
from tfdecomp import training
from tfdecomp.model import DecompVAE

TERMS = ("loss", "reconstruction", "kl", "divergence", "elbo")


def read_events(root):
  """{run: {tag: [(step, kind, value)]}}: kind is scalar, image, histogram, text or hparams."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorboard.plugins.hparams import plugin_data_pb2  # pylint: disable=g-import-not-at-top
  found = collections.defaultdict(lambda: collections.defaultdict(list))
  for path in sorted(glob.glob(os.path.join(root, "**", "events.out.tfevents.*"),
                               recursive=True)):
    run = os.path.relpath(os.path.dirname(path), root)
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        plugin = value.metadata.plugin_data.plugin_name
        if plugin == "images":  # As tf.summary.image: [width, height, PNG].
          width, height, png = tf.make_ndarray(value.tensor)
          image = tf.io.decode_png(png).numpy()
          assert image.shape[:2] == (int(height), int(width))
          found[run][value.tag].append((event.step, "image", image.shape))
        elif plugin == "scalars":
          found[run][value.tag].append((event.step, "scalar",
                                        float(tf.make_ndarray(value.tensor))))
        elif plugin == "histograms":
          found[run][value.tag].append((event.step, "histogram", tf.make_ndarray(value.tensor)))
        elif plugin == "text":
          text = tf.make_ndarray(value.tensor).item().decode()
          found[run][value.tag].append((event.step, "text", text))
        elif plugin == "hparams":
          found[run][value.tag].append((event.step, "hparams", plugin_data_pb2.HParamsPluginData
                                        .FromString(value.metadata.plugin_data.content)))
  return found


def steps(entries):
  return [step for step, _, _ in entries]


@pytest.fixture(scope="module")
def pinwheel_run(tmp_path_factory):
  """A 12-epoch clustering run (one step per epoch: validation after epochs 1 and 10)."""
  out = tmp_path_factory.mktemp("runs") / "pinwheel"
  config = configs.make("clustering", epochs=12)
  result = training.train(config, str(out), progress=False, figures=False)
  return out, result


def test_a_training_run_writes_curves_images_histograms_text_and_hparams(pinwheel_run):
  out, result = pinwheel_run
  events = read_events(out / "tensorboard")
  assert set(events) == {".", "train", "validation"}
  train, validation, root = events["train"], events["validation"], events["."]
  for term in (*TERMS, "beta", "alpha", "learning_rate"):
    assert steps(train[f"epoch/{term}"]) == list(range(1, 13)), term
    assert {kind for _, kind, _ in train[f"epoch/{term}"]} == {"scalar"}
  # The curves are the history's: epoch 12's train loss is history.csv's last row.
  assert train["epoch/loss"][-1][2] == pytest.approx(result.history[-1]["loss"], rel=1e-6)
  assert train["epoch/learning_rate"][0][2] == pytest.approx(1e-3)
  # Validation: after epoch 1 and every K = 10 epochs.
  for term in TERMS:
    assert steps(validation[f"epoch/{term}"]) == [1, 10], term
  assert validation["epoch/loss"][-1][2] == pytest.approx(result.history[9]["val_loss"],
                                                          rel=1e-6)
  assert "val_loss" not in result.history[10]
  assert "epoch/beta" not in validation
  # Images, histograms: after the last epoch (a run this short has no time for more within
  # the "auto" budget).
  for tag in ("images/aggregate_posterior", "images/data_reconstructions"):
    assert steps(root[tag]) == [12], tag
    height, width, channels = root[tag][0][2]
    assert height > 200 and width > 200 and channels in (3, 4)
  assert "images/traversals" not in root  # Not image data.
  for d in range(2):
    for name in ("loc", "scale"):
      entries = root[f"posterior/{name}/z{d}"]
      assert entries[0][1] == "histogram" and steps(entries) == steps(
          root["images/aggregate_posterior"])
      assert entries[0][2].shape == (30, 3)  # (left edge, right edge, count) per bucket.
      assert entries[0][2][:, 2].sum() == min(training.TENSORBOARD_EXAMPLES, 400)
  assert root["posterior/scale/z0"][0][2][0, 0] > 0  # Standard deviations are positive.
  # Text: the config as a table.
  (_, kind, text), = root["config"]
  assert kind == "text" and "| divergence | inclusive_kl |" in text and "| beta | 0.0 |" in text
  # HParams: the session's settings.
  (_, _, data), = root["_hparams_/session_start_info"]
  session = data.session_start_info
  assert session.group_name == "pinwheel"
  assert session.hparams["divergence"].string_value == "inclusive_kl"
  assert session.hparams["latent_dim"].number_value == 2
  assert session.hparams["beta"].number_value == 0.0
  assert session.hparams["dataset_config"].string_value == "none"
  # The test-set terms, at the last epoch, equal metrics.json's.
  for term in TERMS:
    (step, _, value), = root[f"test/{term}"]
    assert step == 12 and value == pytest.approx(result.metrics[term], rel=1e-6)


def _tiny_image_vae(learn_prior):
  """An MLP VAE of 8x8x1 images (D = 3, Bernoulli) with a learnable Gaussian prior."""
  inputs = keras.Input((8, 8, 1))
  h = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(inputs))
  loc = keras.layers.Dense(3)(h)
  scale = keras.layers.Dense(3, activation="softplus")(h)
  encoder = keras.Model(inputs, [loc, scale])
  z = keras.Input((3,))
  decoder = keras.Model(z, keras.layers.Reshape((8, 8, 1))(keras.layers.Dense(64)(z)))
  model = DecompVAE(encoder, decoder, priors.Gaussian(3, learnable=learn_prior),
                    likelihood="bernoulli", beta=1.0, alpha=0.0, seed=0)
  model.compile(optimizer=keras.optimizers.Adam(1e-2))
  return model


def test_the_callback_in_a_plain_fit(tmp_path):
  rng = np.random.default_rng(0)
  x = (rng.random((64, 8, 8, 1)) > 0.5).astype(np.float32)
  model = _tiny_image_vae(learn_prior=True)
  callback = tensorboard.DecompTensorBoard(tmp_path, examples=x[:20], update_freq=3,
                                           image_freq=2, max_images=5, traversal_dims=2)
  model.fit(x, batch_size=16, epochs=3, validation_data=(x[:32],), verbose=0,
            callbacks=[callback])  # 4 steps per epoch.
  events = read_events(tmp_path)
  train, root = events["train"], events["."]
  assert steps(train["step/loss"]) == [3, 6, 9, 12]
  assert steps(train["step/learning_rate"]) == [3, 6, 9, 12]
  assert steps(events["validation"]["epoch/elbo"]) == [1, 2, 3]
  # The learnt prior's variances, by meaning (s * D * softmax(v)), every epoch.
  for d in range(3):
    assert steps(train[f"prior/variance/z{d}"]) == [1, 2, 3]
  last = [train[f"prior/variance/z{d}"][-1][2] for d in range(3)]
  np.testing.assert_allclose(last, model.prior.variances.numpy(), rtol=1e-6)
  # image_freq=2: after epoch 2, and after the last epoch.
  size = 8 * 6  # 8x8 images enlarged 6x to at least 48 pixels; 2 pixels between them.
  expected = {"images/reconstructions": (2 * size + 2, 5 * size + 8, 1),
              "images/prior_samples": (size, 5 * size + 8, 1),
              "images/traversals": (2 * size + 2, 9 * size + 16, 1)}
  for tag, shape in expected.items():
    assert [(s, v) for s, _, v in root[tag]] == [(2, shape), (3, shape)], tag
  assert steps(root["images/aggregate_posterior"]) == [2, 3]  # The two most active dims.
  assert len([t for t in root if t.startswith("posterior/")]) == 2 * 3
  # Without a config the model's own arguments are the table and the hparams.
  (_, _, text), = root["config"]
  assert "| latent_dim | 3 |" in text and "| prior | Gaussian |" in text


def test_most_active_dimensions_and_image_grid():
  rng = np.random.default_rng(0)
  loc = rng.normal(size=(500, 4)) * np.array([0.1, 2.0, 0.5, 1.0])
  np.testing.assert_array_equal(tensorboard.most_active(loc, 3), [1, 3, 2])
  np.testing.assert_allclose(tensorboard.latent_activity(loc), loc.var(axis=0))
  images = rng.random((2, 3, 4, 5, 1))
  grid = tensorboard.image_grid_array(images, pad=1, min_size=1)
  assert grid.shape == (2 * 4 + 1, 3 * 5 + 2, 1)
  np.testing.assert_allclose(grid[5:9, 6:11], images[1, 1], rtol=1e-6)
  assert np.all(grid[4] == 1.0)  # The white separator row.


def test_evaluation_metrics_are_written_next_to_the_curves(tmp_path):
  document = {"model": {"epochs_done": 7},
              "results": {"factor_vae": {"eval_accuracy": 0.75, "num_active_dims": 4,
                                         "seconds": 3.0},
                          "sparsity": {"hoyer": 0.4, "per_class_magnitude": [[1.0]]},
                          "likelihood": {"iwae": float("nan"), "elbo": -90.5}}}
  assert tensorboard.write_evaluation(tmp_path, document) == 4
  root = read_events(tmp_path)["."]
  assert {tag: (s, v) for tag, ((s, _, v),) in root.items()} == {
      "evaluation/factor_vae/eval_accuracy": (7, 0.75),
      "evaluation/factor_vae/num_active_dims": (7, 4.0),
      "evaluation/sparsity/hoyer": (7, pytest.approx(0.4)),
      "evaluation/likelihood/elbo": (7, -90.5)}


@pytest.mark.parametrize("examples, batch, steps_per_epoch, epochs, expected", [
    (400, 400, 1, 12, [1, 10]),            # pinwheel: K = 10
    (359, 64, 22, 7, [1, 3, 6]),           # digits: 5 validation steps, 22 train steps: K = 3
    (10000, 500, 120, 3, [1, 2, 3]),       # Fashion-MNIST: 2,000 examples, 4 steps: every epoch
])
def test_validation_runs_every_epoch_or_every_k_epochs(examples, batch, steps_per_epoch, epochs,
                                                       expected):
  config = configs.make("clustering", epochs=epochs, batch_size=batch)
  x = np.zeros((examples, 2), np.float32)
  kwargs = training.validation_split(x, config, steps_per_epoch)
  assert kwargs["validation_freq"] == expected
  n = min(examples, training.VALIDATION_EXAMPLES)
  assert len(kwargs["validation_data"][0]) == (n // batch) * batch
  # A resumed run validates only its remaining epochs.
  resumed = training.validation_split(x, config, steps_per_epoch, epochs_done=expected[1])
  assert resumed["validation_freq"] == [e for e in expected if e > expected[1]]
  assert math.isfinite(kwargs["validation_batch_size"])


@pytest.mark.slow
def test_a_resumed_run_has_the_validation_curve_of_an_uninterrupted_one(tmp_path):
  whole = training.train(configs.make("clustering", epochs=10), str(tmp_path / "whole"),
                         progress=False, figures=False)
  training.train(configs.make("clustering", epochs=3), str(tmp_path / "resumed"),
                 progress=False, figures=False)
  resumed = training.train(configs.make("clustering", epochs=10), str(tmp_path / "resumed"),
                           progress=False, figures=False)
  assert resumed.resumed_from == 3
  assert [r["epoch"] for r in whole.history if "val_loss" in r] == [1, 10]
  assert (tmp_path / "whole" / "history.csv").read_text() == (
      tmp_path / "resumed" / "history.csv").read_text()
  assert whole.metrics == resumed.metrics
