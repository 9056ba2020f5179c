// adtiers: CppAD for rendered programs (engine cppad). prepare records the program once with
// CppAD::Independent / ADFun (the data become constants of the tape: one tape per data set);
// a gradient is Forward(0) and Reverse(1), the value Forward(0), the Hessian ADFun::Hessian.
#pragma once

#include <cppad/cppad.hpp>

#include "adt.hpp"

namespace adt {
using AD = CppAD::AD<double>;
inline AD scalar_fmax(const AD& a, const AD& b) { return CppAD::CondExpGt(a, b, a, b); }
inline AD scalar_fmin(const AD& a, const AD& b) { return CppAD::CondExpLt(a, b, a, b); }
inline double scalar_fmax(double a, double b) { return std::fmax(a, b); }
inline double scalar_fmin(double a, double b) { return std::fmin(a, b); }
}  // namespace adt

#include "tape.hpp"

namespace adt {

struct CppadHandle {
  Data data;
  CppAD::ADFun<double> f;
  std::vector<double> x, w{1.0};
};

template <class P>
int cppad_prepare(const double* theta0, int n_arrays, const int* kinds, const long* shapes,
                  const void* const* ptrs, int n_lits, const double* lits, int n_blocks, const long* offsets,
                  const long* sizes, void** handle) {
  CppadHandle* h = nullptr;
  ADT_TRY
  h = new CppadHandle{tape_data(n_arrays, kinds, shapes, ptrs, n_lits, lits, n_blocks, offsets, sizes)};
  std::vector<AD> x(theta0, theta0 + h->data.n_theta), y(1);
  CppAD::Independent(x);
  y[0] = P::call(TapeGet<AD>{x, h->data}, h->data);
  h->f.Dependent(x, y);
  h->x.resize(h->data.n_theta);
  *handle = h;
  ADT_CATCH(delete h)
}

inline int cppad_vg(void* handle, const double* theta, double* out) {
  auto* h = static_cast<CppadHandle*>(handle);
  ADT_TRY
  h->x.assign(theta, theta + h->data.n_theta);
  out[0] = h->f.Forward(0, h->x)[0];
  const std::vector<double> dw = h->f.Reverse(1, h->w);
  std::copy(dw.begin(), dw.end(), out + 1);
  ADT_CATCH((void)0)
}

inline int cppad_val(void* handle, const double* theta, double* out) {
  auto* h = static_cast<CppadHandle*>(handle);
  ADT_TRY
  h->x.assign(theta, theta + h->data.n_theta);
  out[0] = h->f.Forward(0, h->x)[0];
  ADT_CATCH((void)0)
}

inline int cppad_hess(void* handle, const double* theta, double* out) {
  auto* h = static_cast<CppadHandle*>(handle);
  ADT_TRY
  h->x.assign(theta, theta + h->data.n_theta);
  const std::vector<double> H = h->f.Hessian(h->x, 0);
  std::copy(H.begin(), H.end(), out);
  ADT_CATCH((void)0)
}

}  // namespace adt

extern "C" {
__attribute__((visibility("default"))) int cppad_vg(void* h, const double* t, double* o) { return adt::cppad_vg(h, t, o); }
__attribute__((visibility("default"))) int cppad_val(void* h, const double* t, double* o) { return adt::cppad_val(h, t, o); }
__attribute__((visibility("default"))) int cppad_hess(void* h, const double* t, double* o) { return adt::cppad_hess(h, t, o); }
__attribute__((visibility("default"))) double cppad_tape_ops(void* h) {
  return static_cast<double>(static_cast<adt::CppadHandle*>(h)->f.size_op());
}
__attribute__((visibility("default"))) void cppad_free(void* h) { delete static_cast<adt::CppadHandle*>(h); }
}

// Program NAME's one entry point: cppad_NAME_prepare (the recording); the calls are shared.
#define ADT_EXPORT(NAME, P)                                                                               \
  ADT_API int cppad_##NAME##_prepare(const double* t0, int na, const int* k, const long* s,               \
                                     const void* const* p, int nl, const double* l, int nb, const long* o, \
                                     const long* z, void** h) {                                           \
    return adt::cppad_prepare<P>(t0, na, k, s, p, nl, l, nb, o, z, h);                                    \
  }
