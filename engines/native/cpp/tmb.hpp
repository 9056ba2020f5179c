// adtiers: TMB for rendered programs (engines tmb, tmb-tmbad). The generic tape functions
// (tape.hpp) run on TMB's Type (CppAD's AD<...> or TMBad's ad_aug, per the framework the
// template is compiled for); the data arrive as one flat DATA_VECTOR of doubles and one
// DATA_IVECTOR of integers, cut into the program's arrays by their kinds and shapes (the same
// flat description the other C++ engines pass through ctypes). TMB minimises, so the objective
// returns the negative log-likelihood; Python turns the signs back.
#pragma once

#include "adt.hpp"

#ifdef CPPAD_FRAMEWORK
// TMB's copy of CppAD has no log1p or expm1: log(1 + u) and exp(u) - 1, differentiated as such.
// The tape's log1p meets u = exp(-|x|) in (0, 1] only (log_sigmoid), where log(1 + u) loses only
// the relative accuracy of terms smaller than 1e-16 of the sum they join.
namespace CppAD {
template <class B>
AD<B> log1p(const AD<B>& u) { return log(1.0 + u); }
template <class B>
AD<B> expm1(const AD<B>& u) { return exp(u) - 1.0; }
}  // namespace CppAD
#endif

namespace adt {
template <class T>
T scalar_fmax(const T& a, const T& b) { return CondExpGt(a, b, a, b); }
template <class T>
T scalar_fmin(const T& a, const T& b) { return CondExpLt(a, b, a, b); }
inline double scalar_fmax(double a, double b) { return std::fmax(a, b); }
inline double scalar_fmin(double a, double b) { return std::fmin(a, b); }
}  // namespace adt

#include "tape.hpp"

namespace adt {

// adt::Data from the flat doubles (f64) and integers (i64) of the template's DATA_ objects:
// per array its kind and (rows, cols); scalars, vectors and matrices in order in f64, index
// arrays in order in i64.
inline Data tmb_data(const std::vector<double>& f64, const std::vector<long>& i64, const std::vector<int>& kinds,
                     const std::vector<long>& shapes, const std::vector<double>& lits,
                     const std::vector<long>& offsets, const std::vector<long>& sizes) {
  const int n = static_cast<int>(kinds.size());
  std::vector<std::int64_t> ints(i64.begin(), i64.end());
  std::vector<const void*> ptrs(n);
  long f = 0, k = 0;
  for (int a = 0; a < n; ++a) {
    const long count = shapes[2 * a] * shapes[2 * a + 1];
    if (kinds[a] == I64_VECTOR) {
      ptrs[a] = ints.data() + k;
      k += count;
    } else {
      ptrs[a] = f64.data() + f;
      f += count;
    }
  }
  return tape_data(n, kinds.data(), shapes.data(), ptrs.data(), static_cast<int>(lits.size()), lits.data(),
                   static_cast<int>(offsets.size()), offsets.data(), sizes.data());
}

template <class V>
std::vector<double> doubles(const V& v) {
  std::vector<double> out(v.size());
  for (long i = 0; i < static_cast<long>(v.size()); ++i) out[i] = asDouble(v[i]);
  return out;
}
template <class V, class I = long>
std::vector<I> integers(const V& v) {
  std::vector<I> out(v.size());
  for (long i = 0; i < static_cast<long>(v.size()); ++i) out[i] = static_cast<I>(v[i]);
  return out;
}

}  // namespace adt

#define ADT_EXPORT(NAME, P)
