"""Wall time of the default evaluation of a dSprites model on the full factor grid, by stage.

Builds the untrained conv64 model of the `independence` preset (the speed does not depend on
training) and runs what `tfdecomp.evaluation.evaluate` runs by default on dSprites: encode the
737,280 factor combinations once (`EncodedGroundTruth`), the six disentanglement metrics on the
codes, sparsity on 10,000 examples, and the likelihood (ELBO + IWAE, K = 1000) on 1,000 examples.
Prints seconds per stage, the encoder's GFLOP/s and the total.

  python benchmarks/evaluate_speed.py                      # the full default evaluation
  python benchmarks/evaluate_speed.py --fraction=0.1      # encode 10% of the grid and run the
                                                          # IWAE on 10% of the examples; their
                                                          # times are extrapolated (x10)

With --fraction < 1 the metrics still run on a full-sized code table (the encoded part, tiled),
so their times are real but their values are meaningless. Target (issue 11; 2 idle cores): <= 6
minutes in total; encoding >= 80% of the TF conv ceiling (~134 GFLOP/s, /work/shared/bench).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# pylint: disable=g-import-not-at-top,wrong-import-position
import argparse
import time
import warnings

import numpy as np

from tfdecomp import builders
from tfdecomp import configs
from tfdecomp import data
from tfdecomp import evaluation
from tfdecomp import metrics as metrics_lib
from tfdecomp.datasets.decomp_dsprites import ground_truth as dsprites_lib

ENCODER_FLOP = 16.0e6      # conv64 encoder, per image (2 FLOP per multiply-add).
DECODER_FLOP = 28.6e6      # conv64 decoder, per latent.
CONV_CEILING = 134.0       # GFLOP/s, TF conv stack on this box (shared/bench/README.md).


class _FirstImages(dsprites_lib.RenderedDSprites):
  """The first `n` positions of the rendered grid (for a sub-sampled encoding)."""

  def __init__(self, n):
    super().__init__("full")
    self._n = n

  @property
  def num_examples(self):
    return self._n


def main():
  warnings.filterwarnings("ignore", category=UserWarning)
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--fraction", type=float, default=1.0,
                      help="Share of the grid encoded and of the IWAE examples (times scaled).")
  parser.add_argument("--max_images", type=int, default=None,
                      help="Encode at most this many grid images (overrides --fraction there).")
  parser.add_argument("--metrics", default=",".join(evaluation.DISENTANGLEMENT + ("sparsity",
                                                                               "likelihood")))
  parser.add_argument("--iwae_samples", type=int, default=1000)
  parser.add_argument("--likelihood_examples", type=int, default=1000)
  parser.add_argument("--batch_size", type=int, default=4096, help="Grid images per encode step.")
  args = parser.parse_args()
  if not 0 < args.fraction <= 1:
    parser.error("--fraction must be in (0, 1].")
  names = [m for m in args.metrics.split(",") if m]

  config = configs.make("independence")
  rng = np.random.default_rng(0)
  ground_truth = data.ground_truth("dsprites", config="full", source="render")
  total = ground_truth.num_examples
  x = ground_truth.sample_observations(10000, rng)
  model = builders.build_model(config, x[:200])
  represent = evaluation.representation_function(model)
  represent(x[:8])  # Trace the compiled encoder outside the timings.
  times = {}

  n = min(total, args.max_images or int(round(args.fraction * total)))
  start = time.perf_counter()
  encoded = evaluation.EncodedGroundTruth(_FirstImages(n) if n < total else ground_truth,
                                          represent, batch_size=args.batch_size)
  seconds = time.perf_counter() - start
  scale = total / n
  times["encode grid"] = seconds * scale
  rate = n * ENCODER_FLOP / seconds / 1e9
  print(f"encode grid: {n} images in {seconds:.1f}s = {n / seconds:.0f} images/s, "
        f"{rate:.0f} GFLOP/s ({100 * rate / CONV_CEILING:.0f}% of the {CONV_CEILING:.0f} GFLOP/s "
        f"conv ceiling)" + (f"; x{scale:.2f} -> {times['encode grid']:.1f}s" if n < total else ""),
        flush=True)
  if n < total:
    encoded.codes = np.resize(encoded.codes, (total, encoded.codes.shape[1]))
    encoded._source = ground_truth  # pylint: disable=protected-access

  for name in names:
    start = time.perf_counter()
    if name in evaluation.DISENTANGLEMENT:
      metrics_lib.DISENTANGLEMENT_METRICS[name](encoded, lambda c: np.asarray(c, np.float64),
                                                seed=0)
      times[name] = time.perf_counter() - start
    elif name == "sparsity":
      metrics_lib.sparsity_scores(represent(x), None)
      times[name] = time.perf_counter() - start
    elif name == "likelihood":
      m = max(32, int(round(args.fraction * args.likelihood_examples)))
      evaluation.evaluate(model, x[:m], metrics=["likelihood"], iwae_samples=args.iwae_samples)
      seconds = time.perf_counter() - start
      times[name] = seconds * args.likelihood_examples / m
      latents = m * args.iwae_samples
      print(f"likelihood: {m} examples, K = {args.iwae_samples}: {seconds:.1f}s = "
            f"{latents / seconds:.0f} decoded latents/s, "
            f"{latents * DECODER_FLOP / seconds / 1e9:.0f} GFLOP/s"
            + (f"; x{args.likelihood_examples / m:.2f} -> {times[name]:.1f}s"
               if m < args.likelihood_examples else ""), flush=True)
    else:
      parser.error(f"unknown metric {name!r}")
    print(f"{name}: {times[name]:.1f}s", flush=True)
  print("stage seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in times.items()))
  print(f"total: {sum(times.values()):.1f}s = {sum(times.values()) / 60:.2f} min"
        + (" (encode and IWAE extrapolated)" if n < total or args.fraction < 1 else ""))


if __name__ == "__main__":
  main()
