// adtiers: the stan-lpdf baseline, Stan as its users write it: one hand-written function per
// problem on Stan's analytic vectorised densities, differentiated by Stan's reverse mode (their
// gradients are closed forms inside Stan: one vari for the whole density, no graph per element).
// Data arrive in the order engines/native/stan_lpdf.py lists for each problem.
#pragma once

#include "stan.hpp"

namespace adt_lpdf {

using stan::math::exp;

// y ~ normal(mu, exp(log_sigma)); theta = [mu, log_sigma]; data [y].
struct Normal {
  template <class G>
  static auto call(const G& g, const adt::Data& d) {
    return stan::math::normal_lpdf<false>(d.vec(0), g.scalar(0), exp(g.scalar(1)));
  }
};

// y ~ normal_id_glm(X, 0, beta, exp(log_sigma)); theta = [beta (p), log_sigma]; data [X, y].
struct Regression {
  template <class G>
  static auto call(const G& g, const adt::Data& d) {
    return stan::math::normal_id_glm_lpdf<false>(d.vec(1), d.mat(0), 0.0, g.vector(0), exp(g.scalar(1)));
  }
};

// x ~ exponential(exp(log_rate)); theta = [log_rate]; data [x].
struct Exponential {
  template <class G>
  static auto call(const G& g, const adt::Data& d) {
    return stan::math::exponential_lpdf<false>(d.vec(0), exp(g.scalar(0)));
  }
};

// y ~ normal_id_glm(X, alpha + exp(log_tau) z[g], beta, exp(log_sigma)), z ~ std_normal();
// theta = [alpha, beta (3), log_sigma, log_tau, z (J)]; data [X, g, y].
struct Hierarchical {
  template <class G>
  static auto call(const G& g, const adt::Data& d) {
    auto z = g.vector(4);
    auto intercept = adt::add(g.scalar(0), adt::elt_multiply(exp(g.scalar(3)), adt::gather(z, d.idx(1))));
    return stan::math::normal_id_glm_lpdf<false>(d.vec(2), d.mat(0), intercept, g.vector(1), exp(g.scalar(2))) +
           stan::math::std_normal_lpdf<false>(z);
  }
};

// y ~ bernoulli_logit_glm(X, alpha, beta); theta = [alpha, beta (p)]; data [X, y (0 or 1)].
struct Logistic {
  template <class G>
  static auto call(const G& g, const adt::Data& d) {
    return stan::math::bernoulli_logit_glm_lpmf<false>(d.idx(1).zero, d.mat(0), g.scalar(0), g.vector(1));
  }
};

}  // namespace adt_lpdf

ADT_EXPORT(lpdf_normal, adt_lpdf::Normal)
ADT_EXPORT(lpdf_regression, adt_lpdf::Regression)
ADT_EXPORT(lpdf_exponential, adt_lpdf::Exponential)
ADT_EXPORT(lpdf_hierarchical, adt_lpdf::Hierarchical)
ADT_EXPORT(lpdf_logistic, adt_lpdf::Logistic)
