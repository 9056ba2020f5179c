// adtiers: the adt:: functions for operator-overloading tape libraries (CppAD, ADOL-C; TMB's
// `Type` the same way), generic over the library's scalar T.
//
// A vector of T is a std::vector<T>, a matrix of T a row-major RowMatrixOf<T>; data are
// std::vector<double> and RowMatrix (adt::Data). Every primitive is a loop of the library's scalar
// operations (the Cholesky factor too: n^3 / 3 multiply-adds on the tape), so the library records one tape operation per element and
// differentiates it: these are forward formulas only, no derivative is written here. The library
// header before this one defines scalar_fmax and scalar_fmin for its scalar (CppAD's CondExp,
// ADOL-C's fmax), the one thing a generic scalar cannot spell.
#pragma once

#include <cmath>
#include <type_traits>
#include <vector>

#include "adt.hpp"

namespace adt {

using Data = BasicData<std::vector<double>, RowMatrix>;

inline Data tape_data(int n_arrays, const int* kinds, const long* shapes, const void* const* ptrs, int n_lits,
                      const double* lits, int n_blocks, const long* offsets, const long* sizes) {
  return make_data<Data>(
      n_arrays, kinds, shapes, ptrs, n_lits, lits, n_blocks, offsets, sizes,
      [](const double* p, long n) { return std::vector<double>(p, p + n); },
      [](const double* p, long r, long c) { return RowMatrix{r, c, std::vector<double>(p, p + r * c)}; });
}

// The scalar type of X and its rank: 0 a scalar, 1 a std::vector, 2 a RowMatrixOf.
template <class X>
struct elem {
  using type = X;
  static constexpr int rank = 0;
};
template <class T>
struct elem<std::vector<T>> {
  using type = T;
  static constexpr int rank = 1;
};
template <class T>
struct elem<RowMatrixOf<T>> {
  using type = T;
  static constexpr int rank = 2;
};
template <class X>
using elem_t = typename elem<X>::type;
template <class X>
constexpr bool is_vec = elem<X>::rank == 1;
template <class X>
constexpr bool is_mat = elem<X>::rank == 2;
// The scalar of an operation on A and B: the library's T if either holds it, else double.
template <class A, class B>
using promote_t = std::conditional_t<std::is_same_v<elem_t<A>, double>, elem_t<B>, elem_t<A>>;

// Element i of an array (a matrix's in row-major order); a scalar is its own every element.
template <class X>
decltype(auto) at(const X& x, long i) {
  if constexpr (is_vec<X>) return x[i];
  else if constexpr (is_mat<X>) return x.v[i];
  else return (x);
}
template <class X>
long len(const X& x) {
  if constexpr (is_mat<X>) return static_cast<long>(x.v.size()); else return static_cast<long>(x.size());
}

// f on every element: a scalar broadcasts against an array; two arrays have the same shape (the
// tape's broadcasting is a scalar against an array, nothing else).
template <class A, class B, class F>
auto map2(const A& a, const B& b, F f) {
  using T = promote_t<A, B>;
  static_assert(!(is_vec<A> && is_mat<B>) && !(is_mat<A> && is_vec<B>), "no vector-matrix broadcasting");
  if constexpr (!is_vec<A> && !is_vec<B> && !is_mat<A> && !is_mat<B>) {
    return T(f(a, b));
  } else {
    long n;
    if constexpr (elem<A>::rank > 0) n = len(a); else n = len(b);
    std::vector<T> out(n);
    for (long i = 0; i < n; ++i) out[i] = f(at(a, i), at(b, i));
    if constexpr (is_mat<A>) return RowMatrixOf<T>{a.rows(), a.cols(), std::move(out)};
    else if constexpr (is_mat<B>) return RowMatrixOf<T>{b.rows(), b.cols(), std::move(out)};
    else return out;
  }
}
template <class X, class F>
auto map1(const X& x, F f) {
  using T = elem_t<X>;
  if constexpr (!is_vec<X> && !is_mat<X>) {
    return T(f(x));
  } else {
    std::vector<T> out(len(x));
    for (long i = 0; i < len(x); ++i) out[i] = f(at(x, i));
    if constexpr (is_mat<X>) return RowMatrixOf<T>{x.rows(), x.cols(), std::move(out)};
    else return out;
  }
}

template <class A, class B>
auto add(const A& a, const B& b) { return map2(a, b, [](const auto& x, const auto& y) { return x + y; }); }
template <class A, class B>
auto subtract(const A& a, const B& b) { return map2(a, b, [](const auto& x, const auto& y) { return x - y; }); }
template <class A, class B>
auto elt_multiply(const A& a, const B& b) { return map2(a, b, [](const auto& x, const auto& y) { return x * y; }); }
template <class A, class B>
auto elt_divide(const A& a, const B& b) { return map2(a, b, [](const auto& x, const auto& y) { return x / y; }); }
template <class A, class B>
auto fmax(const A& a, const B& b) {
  using T = promote_t<A, B>;
  return map2(a, b, [](const auto& x, const auto& y) { return scalar_fmax(T(x), T(y)); });
}

template <class X>
auto minus(const X& x) { return map1(x, [](const auto& v) { return -v; }); }
template <class X>
auto square(const X& x) { return map1(x, [](const auto& v) { return v * v; }); }
#define ADT_TAPE_UNARY(NAME)                                                         \
  template <class X>                                                                 \
  auto NAME(const X& x) {                                                            \
    return map1(x, [](const auto& v) { using std::NAME; return NAME(v); });          \
  }
ADT_TAPE_UNARY(exp)
ADT_TAPE_UNARY(log)
ADT_TAPE_UNARY(fabs)
ADT_TAPE_UNARY(log1p)
ADT_TAPE_UNARY(expm1)
#undef ADT_TAPE_UNARY

// 1 / (1 + exp(-x)) as exp(min(x, 0)) / (1 + exp(-|x|)): no exp of a positive number.
template <class X>
auto inv_logit(const X& x) {
  using T = elem_t<X>;
  return map1(x, [](const auto& v) {
    using std::exp, std::fabs;
    return T(exp(scalar_fmin(T(v), T(0.0))) / (1.0 + exp(-fabs(v))));
  });
}
// log sigmoid(x) as min(x, 0) - log1p(exp(-|x|)).
template <class X>
auto log_inv_logit(const X& x) {
  using T = elem_t<X>;
  return map1(x, [](const auto& v) {
    using std::exp, std::fabs, std::log1p;
    return T(scalar_fmin(T(v), T(0.0)) - log1p(exp(-fabs(v))));
  });
}

template <class X>
auto sum(const X& x) {
  elem_t<X> acc = 0.0;
  for (long i = 0; i < len(x); ++i) acc += at(x, i);
  return acc;
}
template <class X>
auto max(const X& x) {
  using T = elem_t<X>;
  T acc = at(x, 0);
  for (long i = 1; i < len(x); ++i) acc = scalar_fmax(acc, T(at(x, i)));
  return acc;
}
// m + log sum_i exp(x_i - m), m = max(x): the identity holds for any m, so its derivative is
// softmax whatever the library does at the max's kink.
template <class X>
auto log_sum_exp(const X& x) {
  using T = elem_t<X>;
  const T m = max(x);
  T acc = 0.0;
  for (long i = 0; i < len(x); ++i) {
    using std::exp;
    acc += exp(at(x, i) - m);
  }
  using std::log;
  return T(m + log(acc));
}

// A @ b for a data matrix A (n x p) and a vector b.
template <class B>
auto multiply(const RowMatrix& a, const B& b) {
  using T = elem_t<B>;
  std::vector<T> out(a.rows());
  for (long i = 0; i < a.rows(); ++i) {
    T acc = 0.0;
    for (long j = 0; j < a.cols(); ++j) acc += a(i, j) * b[j];
    out[i] = acc;
  }
  return out;
}

// The lower factor L of S = (A + A^T) / 2 = L L^T (Cholesky-Banachiewicz, row by row; zeros above):
//   L_jj = sqrt(S_jj - sum_{k<j} L_jk^2),  L_ij = (S_ij - sum_{k<j} L_ik L_jk) / L_jj  for i > j.
// The forward formula only: the library records its n^3 / 3 multiply-adds and differentiates them.
template <class A>
auto cholesky(const A& a) {
  using T = elem_t<A>;
  const long n = a.rows();
  RowMatrixOf<T> l{n, n, std::vector<T>(n * n, T(0.0))};
  for (long i = 0; i < n; ++i) {
    for (long j = 0; j <= i; ++j) {
      T s = 0.5 * (a(i, j) + a(j, i));
      for (long k = 0; k < j; ++k) s -= l(i, k) * l(j, k);
      using std::sqrt;
      if (i == j) l(i, i) = sqrt(s); else l(i, j) = s / l(j, j);
    }
  }
  return l;
}
// x with L x = b, L lower triangular (its upper triangle unread): forward substitution,
//   x_i = (b_i - sum_{k<i} L_ik x_k) / L_ii.
template <class L, class B>
auto solve_triangular(const L& l, const B& b) {
  using T = promote_t<L, B>;
  const long n = l.rows();
  std::vector<T> x(n);
  for (long i = 0; i < n; ++i) {
    T s = b[i];
    for (long k = 0; k < i; ++k) s -= l(i, k) * x[k];
    x[i] = s / l(i, i);
  }
  return x;
}
// (A_11, ..., A_kk), k = min(rows, cols).
template <class A>
auto diagonal(const A& a) {
  const long k = a.rows() < a.cols() ? a.rows() : a.cols();
  std::vector<elem_t<A>> out(k);
  for (long i = 0; i < k; ++i) out[i] = a(i, i);
  return out;
}

template <class X>
auto gather(const X& x, const IntVec& idx) {
  std::vector<elem_t<X>> out(idx.size());
  for (long i = 0; i < idx.size(); ++i) out[i] = x[idx.zero[i]];
  return out;
}

// theta as a std::vector of the library's T, cut into blocks.
template <class T>
struct TapeGet {
  const std::vector<T>& x;
  const Data& d;
  T scalar(int k) const { return x[d.offset[k]]; }
  std::vector<T> vector(int k) const {
    return std::vector<T>(x.begin() + d.offset[k], x.begin() + d.offset[k] + d.size[k]);
  }
  template <class X>
  static const X& lift(const X& v) { return v; }
};

}  // namespace adt

#define ADT_EXPORT_SOA(NAME, P)
