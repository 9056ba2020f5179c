// adtiers: ADOL-C for rendered programs (engine adolc). prepare traces the program once between
// trace_on and trace_off under a tag of its own (the data become constants of the tape); a
// gradient is zos_forward (keeping the Taylor values) and fos_reverse, the value zos_forward, the
// Hessian ADOL-C's hessian driver. Tapes too large for ADOL-C's buffers go to files in TAPE_DIR,
// which engines/native/adolc.py points at a directory of the process's own.
#pragma once

#include <adolc/adolc.h>

#include "adt.hpp"

// ADOL-C 2.7 has no log1p and expm1 for adouble: log(1 + x) and exp(x) - 1 (found by ADL).
inline adouble log1p(const badouble& x) { return log(1.0 + x); }
inline adouble expm1(const badouble& x) { return exp(x) - 1.0; }

namespace adt {
inline adouble scalar_fmax(const adouble& a, const adouble& b) { return fmax(a, b); }
inline adouble scalar_fmin(const adouble& a, const adouble& b) { return fmin(a, b); }
inline double scalar_fmax(double a, double b) { return std::fmax(a, b); }
inline double scalar_fmin(double a, double b) { return std::fmin(a, b); }
}  // namespace adt

#include "tape.hpp"

namespace adt {

struct AdolcHandle {
  Data data;
  short tag = 0;
  std::vector<double> hess_rows;
};

// Tags in use, so that every prepared data set traces under its own.
inline std::vector<bool>& tags_used() {
  static std::vector<bool> used(1, true);  // tag 0 is never handed out
  return used;
}
inline short take_tag() {
  auto& used = tags_used();
  for (size_t t = 1; t < used.size(); ++t)
    if (!used[t]) { used[t] = true; return static_cast<short>(t); }
  if (used.size() >= 32000) throw std::runtime_error("ADOL-C: out of tape tags (32000 prepared data sets)");
  used.push_back(true);
  return static_cast<short>(used.size() - 1);
}

template <class P>
int adolc_prepare(const double* theta0, int n_arrays, const int* kinds, const long* shapes,
                  const void* const* ptrs, int n_lits, const double* lits, int n_blocks, const long* offsets,
                  const long* sizes, void** handle) {
  AdolcHandle* h = nullptr;
  ADT_TRY
  h = new AdolcHandle{tape_data(n_arrays, kinds, shapes, ptrs, n_lits, lits, n_blocks, offsets, sizes)};
  h->tag = take_tag();
  const long m = h->data.n_theta;
  trace_on(h->tag, 1);
  {
    std::vector<adouble> x(m);
    for (long i = 0; i < m; ++i) x[i] <<= theta0[i];
    adouble y = P::call(TapeGet<adouble>{x, h->data}, h->data);
    double value;
    y >>= value;
  }
  trace_off();
  *handle = h;
  ADT_CATCH(if (isTaping()) trace_off(); delete h)
}

inline int adolc_vg(void* handle, const double* theta, double* out) {
  auto* h = static_cast<AdolcHandle*>(handle);
  ADT_TRY
  const int m = static_cast<int>(h->data.n_theta);
  double w = 1.0;
  if (zos_forward(h->tag, 1, m, 1, theta, out) < 0) throw std::runtime_error("ADOL-C zos_forward failed");
  if (fos_reverse(h->tag, 1, m, &w, out + 1) < 0) throw std::runtime_error("ADOL-C fos_reverse failed");
  ADT_CATCH((void)0)
}

inline int adolc_val(void* handle, const double* theta, double* out) {
  auto* h = static_cast<AdolcHandle*>(handle);
  ADT_TRY
  const int m = static_cast<int>(h->data.n_theta);
  if (zos_forward(h->tag, 1, m, 0, theta, out) < 0) throw std::runtime_error("ADOL-C zos_forward failed");
  ADT_CATCH((void)0)
}

// ADOL-C's hessian fills the lower triangle; the upper is mirrored here.
inline int adolc_hess(void* handle, const double* theta, double* out) {
  auto* h = static_cast<AdolcHandle*>(handle);
  ADT_TRY
  const int m = static_cast<int>(h->data.n_theta);
  std::vector<double*> rows(m);
  for (int i = 0; i < m; ++i) rows[i] = out + static_cast<long>(i) * m;
  if (hessian(h->tag, m, const_cast<double*>(theta), rows.data()) < 0)
    throw std::runtime_error("ADOL-C hessian failed");
  for (int i = 0; i < m; ++i)
    for (int j = i + 1; j < m; ++j) out[static_cast<long>(i) * m + j] = out[static_cast<long>(j) * m + i];
  ADT_CATCH((void)0)
}

}  // namespace adt

extern "C" {
__attribute__((visibility("default"))) int adolc_vg(void* h, const double* t, double* o) { return adt::adolc_vg(h, t, o); }
__attribute__((visibility("default"))) int adolc_val(void* h, const double* t, double* o) { return adt::adolc_val(h, t, o); }
__attribute__((visibility("default"))) int adolc_hess(void* h, const double* t, double* o) { return adt::adolc_hess(h, t, o); }
__attribute__((visibility("default"))) double adolc_tape_ops(void* h) {
  size_t counts[STAT_SIZE];
  tapestats(static_cast<adt::AdolcHandle*>(h)->tag, counts);
  return static_cast<double>(counts[NUM_OPERATIONS]);
}
// The locations every sweep of this tape allocates: the store's size when it was traced.
__attribute__((visibility("default"))) double adolc_max_lives(void* h) {
  size_t counts[STAT_SIZE];
  tapestats(static_cast<adt::AdolcHandle*>(h)->tag, counts);
  return static_cast<double>(counts[NUM_MAX_LIVES]);
}
__attribute__((visibility("default"))) void adolc_free(void* handle) {
  auto* h = static_cast<adt::AdolcHandle*>(handle);
  removeTape(h->tag, ADOLC_REMOVE_COMPLETELY);
  adt::tags_used()[h->tag] = false;
  delete h;
}
}

#define ADT_EXPORT(NAME, P)                                                                               \
  ADT_API int adolc_##NAME##_prepare(const double* t0, int na, const int* k, const long* s,               \
                                     const void* const* p, int nl, const double* l, int nb, const long* o, \
                                     const long* z, void** h) {                                           \
    return adt::adolc_prepare<P>(t0, na, k, s, p, nl, l, nb, o, z, h);                                    \
  }
