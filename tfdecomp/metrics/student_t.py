"""Mapping Student-t codes to standard Normal ones before scoring (Mathieu et al. 2019, Sec. 5).

Each dimension is passed through its Student-t prior's CDF and the standard Normal inverse CDF,
z -> Phi^-1(F_nu((z - loc) / scale)), so that a code distributed as the prior becomes N(0, 1). The
map is evaluated in the lower tail on both sides (using symmetry) with log-CDFs and
`scipy.special.ndtri_exp`, so it stays finite and monotone far into the tails where F_nu rounds
to 0 or 1 in float64.
"""

import numpy as np
from scipy import special
from scipy import stats


def student_t_to_normal(codes, df, scale=1.0, loc=0.0) -> np.ndarray:
  """Phi^-1(StudentT_cdf(codes; df, loc, scale)) elementwise.

  Args:
    codes: float [..., D].
    df: degrees of freedom nu > 0, scalar or [D].
    scale: Student-t scale(s) > 0, scalar or [D] (e.g. a prior's `scales`).
    loc: location(s), scalar or [D].

  Returns:
    float64 array shaped like `codes`.

  Raises:
    ValueError: if df or scale are not positive.
  """
  df = np.asarray(df, dtype=np.float64)
  scale = np.asarray(scale, dtype=np.float64)
  if np.any(df <= 0) or np.any(scale <= 0):
    raise ValueError(f"df and scale must be positive, got df={df}, scale={scale}.")
  t = (np.asarray(codes, dtype=np.float64) - loc) / scale
  negative_abs = -np.abs(t)
  log_cdf = stats.t.logcdf(negative_abs, df)  # log F(-|t|) = log of the smaller tail.
  lower = special.ndtri_exp(log_cdf)  # Phi^-1 of the smaller tail, <= 0.
  return np.where(t < 0, lower, -lower)
