// adtiers: what every rendered log-likelihood and every library glue shares (no AD library here).
//
// A rendered program (engines/native/render.py) is a function template over its theta blocks that
// reads data through adt::Data and calls adt:: functions, one per primitive (their names are the
// `cpp` templates of engines/core/primitives.py). Each library's prelude defines those functions
// for its own types and the ADT_EXPORT macro, which emits the extern "C" entry points.
//
// Errors: every entry point returns 0 on success and 1 on a C++ exception, whose what() is kept
// in a thread-local buffer (adt_last_error) for Python to raise: an exception escaping into
// ctypes would terminate the process.
#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace adt {

// An integer index array: 0-based as NumPy gave it; `cache` holds a library's own form of it
// (Stan's 1-based index_multi), built once per prepared data set.
struct IntVec {
  std::vector<int> zero;
  mutable std::shared_ptr<void> cache;
  long size() const { return static_cast<long>(zero.size()); }
};

// A row-major matrix, as NumPy gives it: of doubles, the tape libraries' data matrix (RowMatrix);
// of the library's scalar, their matrix-valued intermediate values (a kernel matrix, its factor).
template <class T>
struct RowMatrixOf {
  long n_rows = 0, n_cols = 0;
  std::vector<T> v;
  long rows() const { return n_rows; }
  long cols() const { return n_cols; }
  const T& operator()(long i, long j) const { return v[i * n_cols + j]; }
  T& operator()(long i, long j) { return v[i * n_cols + j]; }
};
using RowMatrix = RowMatrixOf<double>;

// The data of one prepared (problem, data set), copied from NumPy at prepare. Vec and Mat are the
// library's types for a data vector and matrix (Eigen's for Stan; std::vector and RowMatrix for
// the tape libraries, which need no Eigen); each prelude names its own as adt::Data.
template <class Vec, class Mat>
struct BasicData {
  std::vector<double> lits;   // the program's literals (-n, 0.5 n log 2 pi, ...)
  std::vector<double> scalars;  // 0-d float arrays, by data index
  std::vector<Vec> vecs;      // 1-d float arrays, by data index
  std::vector<Mat> mats;      // 2-d float arrays, by data index
  std::vector<IntVec> ints;   // 1-d integer arrays, by data index
  std::vector<long> offset, size;  // each theta block's offset and length (0 for a scalar)
  long n_theta = 0;

  double lit(int k) const { return lits[k]; }
  double scalar(int k) const { return scalars[k]; }
  const Vec& vec(int k) const { return vecs[k]; }
  const Mat& mat(int k) const { return mats[k]; }
  const IntVec& idx(int k) const { return ints[k]; }
};

enum Kind : int { F64_SCALAR = 0, F64_VECTOR = 1, F64_MATRIX = 2, I64_VECTOR = 3 };

// Data from the flat description Python passes: per array its kind, two extents (rows, cols) and
// a pointer to C-contiguous memory; the literals; per theta block its offset and size. `to_vec`
// and `to_mat` build the library's types from (pointer, rows[, cols]) of row-major doubles.
template <class D, class ToVec, class ToMat>
D make_data(int n_arrays, const int* kinds, const long* shapes, const void* const* ptrs, int n_lits,
            const double* lits, int n_blocks, const long* offsets, const long* sizes, ToVec to_vec, ToMat to_mat) {
  D d;
  d.lits.assign(lits, lits + n_lits);
  d.scalars.resize(n_arrays);
  d.vecs.resize(n_arrays);
  d.mats.resize(n_arrays);
  d.ints.resize(n_arrays);
  for (int k = 0; k < n_arrays; ++k) {
    const long rows = shapes[2 * k], cols = shapes[2 * k + 1];
    const auto* p = static_cast<const double*>(ptrs[k]);
    if (kinds[k] == F64_SCALAR) {
      d.scalars[k] = *p;
    } else if (kinds[k] == F64_VECTOR) {
      d.vecs[k] = to_vec(p, rows);
    } else if (kinds[k] == F64_MATRIX) {
      d.mats[k] = to_mat(p, rows, cols);
    } else {
      const auto* q = static_cast<const std::int64_t*>(ptrs[k]);
      d.ints[k].zero.assign(q, q + rows);
    }
  }
  d.offset.assign(offsets, offsets + n_blocks);
  d.size.assign(sizes, sizes + n_blocks);
  for (int b = 0; b < n_blocks; ++b) d.n_theta += sizes[b] == 0 ? 1 : sizes[b];
  return d;
}

inline std::string& last_error() {
  static thread_local std::string message;
  return message;
}

}  // namespace adt

// The body of an entry point: 0 on success, 1 with the exception's message kept for Python.
#define ADT_TRY try {
#define ADT_CATCH(cleanup)                                   \
  }                                                          \
  catch (const std::exception& err) {                        \
    cleanup;                                                 \
    adt::last_error() = std::string(err.what());             \
    return 1;                                                \
  }                                                          \
  catch (...) {                                              \
    cleanup;                                                 \
    adt::last_error() = "unknown C++ exception (not a std::exception)"; \
    return 1;                                                \
  }                                                          \
  return 0;

#define ADT_API extern "C" __attribute__((visibility("default")))

extern "C" {
// The message of the last exception caught on this thread.
__attribute__((visibility("default"))) const char* adt_last_error() { return adt::last_error().c_str(); }
// Throws on purpose: the test that exceptions become Python errors calls it.
__attribute__((visibility("default"))) int adt_throw(const char* message) {
  ADT_TRY throw std::runtime_error(message);
  ADT_CATCH((void)0)
}
}
