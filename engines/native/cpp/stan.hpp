// adtiers: Stan Math's reverse mode for rendered programs (engines stan, stan-varmat, stan-lpdf).
//
// One translation unit holds every program: each is instantiated three ways,
// - array-of-structs: theta as Eigen::Matrix<var, -1, 1>, one vari per element, Stan's vectorised
//   functions on them (engine stan);
// - struct-of-arrays: each vector block a var_value<Eigen::VectorXd> (one vari holding a value and
//   an adjoint vector), data vectors and matrices lifted to var_value where they meet only scalar
//   parameters, so that Stan keeps the result struct-of-arrays (engine stan-varmat);
// - fvar<var> for stan::math::hessian (forward over reverse), and double for the value alone.
// After every gradient recover_memory() returns the arena to Stan's free list (kept for the next
// call, as Stan does); stan_free frees it to the system when a prepared problem is dropped.
#pragma once

#include <stan/math/mix.hpp>
#include <stan/model/indexing.hpp>

#include "adt.hpp"

namespace adt {

using Data = BasicData<Eigen::VectorXd, Eigen::MatrixXd>;

inline Data stan_data(int n_arrays, const int* kinds, const long* shapes, const void* const* ptrs, int n_lits,
                      const double* lits, int n_blocks, const long* offsets, const long* sizes) {
  using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  return make_data<Data>(
      n_arrays, kinds, shapes, ptrs, n_lits, lits, n_blocks, offsets, sizes,
      [](const double* p, long n) { return Eigen::VectorXd(Eigen::Map<const Eigen::VectorXd>(p, n)); },
      [](const double* p, long r, long c) { return Eigen::MatrixXd(Eigen::Map<const RowMajor>(p, r, c)); });
}

using stan::math::var;
using VarVec = stan::math::var_value<Eigen::VectorXd>;

template <class A, class B>
constexpr bool both_scalar = stan::is_stan_scalar<A>::value && stan::is_stan_scalar<B>::value;

template <class X>
auto plain(X&& x) {
  return stan::math::eval(std::forward<X>(x));
}

template <class A, class B>
auto add(const A& a, const B& b) {
  if constexpr (both_scalar<A, B>) return a + b; else return plain(stan::math::add(a, b));
}
template <class A, class B>
auto subtract(const A& a, const B& b) {
  if constexpr (both_scalar<A, B>) return a - b; else return plain(stan::math::subtract(a, b));
}
template <class A, class B>
auto elt_multiply(const A& a, const B& b) {
  if constexpr (both_scalar<A, B>) return a * b;
  else if constexpr (stan::is_stan_scalar<A>::value || stan::is_stan_scalar<B>::value)
    return plain(stan::math::multiply(a, b));
  else return plain(stan::math::elt_multiply(a, b));
}
template <class A, class B>
auto elt_divide(const A& a, const B& b) {
  if constexpr (both_scalar<A, B>) return a / b;
  else if constexpr (stan::is_stan_scalar<B>::value) return plain(stan::math::divide(a, b));
  else return plain(stan::math::elt_divide(a, b));
}
template <class A, class B>
auto multiply(const A& a, const B& b) { return plain(stan::math::multiply(a, b)); }
template <class A, class B>
auto fmax(const A& a, const B& b) { return plain(stan::math::fmax(a, b)); }

#define ADT_STAN_UNARY(NAME, STAN)                               \
  template <class X>                                             \
  auto NAME(const X& x) { return plain(stan::math::STAN(x)); }
ADT_STAN_UNARY(minus, minus)
ADT_STAN_UNARY(exp, exp)
ADT_STAN_UNARY(log, log)
ADT_STAN_UNARY(square, square)
ADT_STAN_UNARY(fabs, fabs)
ADT_STAN_UNARY(log1p, log1p)
ADT_STAN_UNARY(expm1, expm1)
ADT_STAN_UNARY(inv_logit, inv_logit)
ADT_STAN_UNARY(log_inv_logit, log_inv_logit)
ADT_STAN_UNARY(sum, sum)
ADT_STAN_UNARY(max, max)
ADT_STAN_UNARY(log_sum_exp, log_sum_exp)
#undef ADT_STAN_UNARY

// The lower factor of S = (A + A^T) / 2 = L L^T: Stan's cholesky_decompose (its own reverse rule) on
// the symmetrised matrix, which is exactly symmetric (x + y == y + x in floating point), as
// cholesky_decompose checks.
template <class A>
auto cholesky(const A& a) {
  const auto s = plain(stan::math::multiply(0.5, stan::math::add(a, stan::math::transpose(a))));
  return plain(stan::math::cholesky_decompose(s));
}
// x = L^{-1} b, L lower triangular: mdivide_left_tri_low; a var_value L through mdivide_left_tri<Lower>,
// the form Stan has for var_value (mdivide_left_tri_low is for Eigen matrices).
template <class L, class B>
auto solve_triangular(const L& l, const B& b) {
  if constexpr (stan::is_var_matrix<L>::value || stan::is_var_matrix<B>::value)
    return plain(stan::math::mdivide_left_tri<Eigen::Lower>(l, b));
  else return plain(stan::math::mdivide_left_tri_low(l, b));
}
template <class A>
auto diagonal(const A& a) { return plain(stan::math::diagonal(a)); }

// x[idx] through Stan's own multi-index (1-based, built once per data set and kept in idx.cache).
template <class X>
auto gather(const X& x, const IntVec& idx) {
  if (!idx.cache) {
    std::vector<int> one(idx.zero.size());
    for (size_t i = 0; i < one.size(); ++i) one[i] = idx.zero[i] + 1;
    idx.cache = std::make_shared<stan::model::index_multi>(one);
  }
  return plain(stan::model::rvalue(x, "gather", *static_cast<stan::model::index_multi*>(idx.cache.get())));
}

// theta as one Eigen vector of T: blocks are its elements and segments (no new vari for a var).
template <class T>
struct SegGet {
  const Eigen::Matrix<T, -1, 1>& x;
  const Data& d;
  T scalar(int k) const { return x(d.offset[k]); }
  Eigen::Matrix<T, -1, 1> vector(int k) const { return x.segment(d.offset[k], d.size[k]); }
  template <class X>
  static const X& lift(const X& v) { return v; }
};

// struct-of-arrays: a var per scalar block, a var_value<VectorXd> per vector block.
struct SoaGet {
  const Data& d;
  std::vector<var> s;
  std::vector<VarVec> v;
  SoaGet(const double* theta, const Data& data) : d(data), s(data.offset.size()), v(data.offset.size()) {
    for (size_t b = 0; b < d.offset.size(); ++b) {
      if (d.size[b] == 0) s[b] = var(theta[d.offset[b]]);
      else v[b] = VarVec(Eigen::Map<const Eigen::VectorXd>(theta + d.offset[b], d.size[b]));
    }
  }
  var scalar(int k) const { return s[k]; }
  const VarVec& vector(int k) const { return v[k]; }
  template <class X>
  static auto lift(const X& x) {
    if constexpr (stan::is_eigen<X>::value) return stan::math::var_value<stan::plain_type_t<X>>(x); else return x;
  }
  void adjoints(double* out) const {
    for (size_t b = 0; b < d.offset.size(); ++b) {
      if (d.size[b] == 0) out[d.offset[b]] = s[b].adj();
      else Eigen::Map<Eigen::VectorXd>(out + d.offset[b], d.size[b]) = v[b].adj();
    }
  }
};

struct StanHandle {
  Data data;
  double arena_bytes = 0;  // the arena's blocks after the last gradient
  double nodes = 0;        // the varis that gradient's graph held (one per element for a Matrix<var>)
};

template <class P>
struct Functor {
  const Data& d;
  template <class T>
  T operator()(const Eigen::Matrix<T, -1, 1>& x) const { return P::call(SegGet<T>{x, d}, d); }
};

inline void remember_arena(StanHandle* h) {
  const auto* stack = stan::math::ChainableStack::instance_;
  h->arena_bytes = static_cast<double>(stack->memalloc_.bytes_allocated());
  h->nodes = static_cast<double>(stack->var_stack_.size() + stack->var_nochain_stack_.size());
}

template <class P>
int vg_aos(void* handle, const double* theta, double* out) {
  auto* h = static_cast<StanHandle*>(handle);
  ADT_TRY
  Eigen::Matrix<var, -1, 1> x = Eigen::Map<const Eigen::VectorXd>(theta, h->data.n_theta).cast<var>();
  var lp = P::call(SegGet<var>{x, h->data}, h->data);
  lp.grad();
  out[0] = lp.val();
  for (long i = 0; i < x.size(); ++i) out[1 + i] = x(i).adj();
  remember_arena(h);
  stan::math::recover_memory();
  ADT_CATCH(stan::math::recover_memory())
}

template <class P>
int vg_soa(void* handle, const double* theta, double* out) {
  auto* h = static_cast<StanHandle*>(handle);
  ADT_TRY
  SoaGet get(theta, h->data);
  var lp = P::call(get, h->data);
  lp.grad();
  out[0] = lp.val();
  get.adjoints(out + 1);
  remember_arena(h);
  stan::math::recover_memory();
  ADT_CATCH(stan::math::recover_memory())
}

template <class P>
int val(void* handle, const double* theta, double* out) {
  auto* h = static_cast<StanHandle*>(handle);
  ADT_TRY
  Eigen::VectorXd x = Eigen::Map<const Eigen::VectorXd>(theta, h->data.n_theta);
  out[0] = P::call(SegGet<double>{x, h->data}, h->data);
  ADT_CATCH((void)0)
}

template <class P>
int hess(void* handle, const double* theta, double* out) {
  auto* h = static_cast<StanHandle*>(handle);
  ADT_TRY
  Eigen::VectorXd x = Eigen::Map<const Eigen::VectorXd>(theta, h->data.n_theta), grad;
  Eigen::MatrixXd H;
  double fx;
  stan::math::hessian(Functor<P>{h->data}, x, fx, grad, H);
  Eigen::Map<Eigen::MatrixXd>(out, x.size(), x.size()) = H;
  ADT_CATCH(stan::math::recover_memory())
}

}  // namespace adt


extern "C" {
__attribute__((visibility("default"))) int stan_prepare(int n_arrays, const int* kinds, const long* shapes,
                                                        const void* const* ptrs, int n_lits, const double* lits,
                                                        int n_blocks, const long* offsets, const long* sizes,
                                                        void** handle) {
  ADT_TRY
  *handle = new adt::StanHandle{adt::stan_data(n_arrays, kinds, shapes, ptrs, n_lits, lits, n_blocks, offsets, sizes)};
  ADT_CATCH((void)0)
}
// Drop a prepared problem, and give Stan's arena back to the system (recover_memory keeps it).
__attribute__((visibility("default"))) void stan_free(void* handle) {
  delete static_cast<adt::StanHandle*>(handle);
  stan::math::recover_memory();
  stan::math::ChainableStack::instance_->memalloc_.free_all();
}
__attribute__((visibility("default"))) double stan_arena_bytes(void* handle) {
  return static_cast<adt::StanHandle*>(handle)->arena_bytes;
}
__attribute__((visibility("default"))) double stan_graph_nodes(void* handle) {
  return static_cast<adt::StanHandle*>(handle)->nodes;
}
}

// The entry points of program NAME (struct P): stan_NAME_{vg_aos,val,hess}, and with ADT_EXPORT_SOA
// stan_NAME_vg_soa (only for programs whose every primitive Stan has for var_value).
#define ADT_EXPORT(NAME, P)                                                                                   \
  ADT_API int stan_##NAME##_vg_aos(void* h, const double* t, double* o) { return adt::vg_aos<P>(h, t, o); } \
  ADT_API int stan_##NAME##_val(void* h, const double* t, double* o) { return adt::val<P>(h, t, o); }       \
  ADT_API int stan_##NAME##_hess(void* h, const double* t, double* o) { return adt::hess<P>(h, t, o); }
#define ADT_EXPORT_SOA(NAME, P) \
  ADT_API int stan_##NAME##_vg_soa(void* h, const double* t, double* o) { return adt::vg_soa<P>(h, t, o); }
