// The two ways the Gaussian ops take the spread of z = mean + sd * eps:
//   gaussian_rsample(mu, logvar):  sd = exp(logvar / 2),  d sd / d logvar = sd / 2
//   normal_rsample(loc, scale):    sd = scale,            d sd / d scale  = 1
// The kernels are written once over a Spread (host and device): the forward gathers sd(x) per
// element of the sample shape, the backward reduces sum_k grad_k * eps_k over the samples and
// multiplies by d sd / d x. With the scale the gradient needs no exp of a logarithm, so it is
// exact at scale = 0 (where the log-variance form has no finite parameter at all).
#pragma once

#include "common/macros.h"
#include "common/scalar_math.h"

namespace gradext {

struct LogVarSpread {
  template <typename T>
  static GRADEXT_INLINE T std_dev(T logvar) {
    return math::exp(T(0.5) * logvar);
  }
  template <typename T>
  static GRADEXT_INLINE T std_dev_derivative(T logvar) {
    return T(0.5) * math::exp(T(0.5) * logvar);
  }
};

struct ScaleSpread {
  template <typename T>
  static GRADEXT_INLINE T std_dev(T scale) {
    return scale;
  }
  template <typename T>
  static GRADEXT_INLINE T std_dev_derivative(T) {
    return T(1);
  }
};

}  // namespace gradext
