"""``tmb`` and ``tmb-tmbad``: Template Model Builder through R (Tier 2 in C++).

The problem's tape is rendered as C++ once (``engines.native.render``, the same text the other C++
engines compile) and wrapped in a TMB template (``cpp/tmb.hpp``)::

    template <class Type> Type objective_function<Type>::operator()() {
      DATA_INTEGER(adt_program);  DATA_VECTOR(adt_f64);  DATA_IVECTOR(adt_i64);  ...
      PARAMETER_VECTOR(theta);                       // the problem's flat layout
      switch (adt_program) { case 0: return -loglik_0(theta, d); ... }   // TMB minimises
    }

Every built-in problem is one ``case`` of one template per framework, so the first prepare compiles
them all (``TMB::compile``, 40-120 s) and every later one, in any process, loads the file from the
compile cache (``engines.native.build``'s directory, keyed by the source, the flags, the preludes
and R's, TMB's and g++'s versions). ``prepare`` is ``MakeADFun`` (TMB records its tape there); a
call is ``c(obj$fn(x), obj$gr(x))``, one crossing from Python into R through rpy2, signs turned
back to the log-likelihood; the Hessian is ``-obj$he(x)``. ``info["stderr_at"]`` gives
``sdreport``'s standard errors at a point (``adtiers fit`` shows them beside ours) and
``info["optimise"]`` runs TMB's own path to a fit, ``nlminb`` on ``obj$fn``/``obj$gr`` inside R.

Two times, both real: a Python user pays the rpy2 crossing (80-200 us) on every call, an R user
only ``obj$fn`` + ``obj$gr``. The harness times the first as it times every engine; prepare also
times the second inside R with R's clock (many calls per round, the median of rounds) and records
it as ``info["in_r_vg_seconds"]`` / ``info["in_r_value_seconds"]``, per call.

R is single-threaded and not reentrant: every call into R holds one process-wide lock, and R lives
in the engine's worker process (the harness starts workers as fresh subprocesses, never forks).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from engines.core.contract import Engine, Prepared
from engines.native.build import COMPILE_TIMEOUT_S, Compiled, CompileError, cache_path, compile_once
from engines.native.engine import check_scalar_tape, data_layout, rendered_builtins
from engines.native.libraries import CPP_DIR, compiler
from engines.native.render import I64_VECTOR, Rendered, native_program, render
from problems.base import Data, Problem

R_INSTALL = "apt-get update && apt-get install -y r-cran-tmb (make install does it where it runs as root)"
RPY2_INSTALL = "pip install -e '.[r]' -c constraints.txt (rpy2==3.5.17; make install does it)"
COMPILE_FLAGS = "-std=gnu++17 -g0"
"""Added to R's own flags (``-O2 -g``): the same optimisation an R user's ``TMB::compile`` gets,
without the debug information that makes the compile slower and changes nothing at run time."""
IN_R_ROUNDS, IN_R_MIN_S = 5, 0.02
"""In-R timing: 5 rounds, each of as many calls as take at least 20 ms by R's clock."""
_R_LOCK = threading.RLock()


def _r_version_info() -> dict[str, str | None]:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return {}
    code = 'cat(paste(R.version$major, R.version$minor, sep="."), "\\n"); cat(tryCatch(as.character(packageVersion("TMB")), error=function(e) ""))'
    try:
        found = subprocess.run([rscript, "-e", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return {}
    lines = found.stdout.splitlines() + ["", ""]
    return {"R": lines[0].strip() or None, "TMB": lines[1].strip() or None}


@functools.cache
def r_versions() -> dict[str, str | None]:
    """R's and TMB's versions (one ``Rscript`` run, cached per process), rpy2's and g++'s."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        rpy2 = version("rpy2")
    except PackageNotFoundError:
        rpy2 = None
    return {**_r_version_info(), "rpy2": rpy2, "g++": compiler()[1]}


@functools.cache
def tmb_reason() -> str | None:
    """Why the TMB engines cannot run here, with the command that fixes it; None when they can."""
    if shutil.which("Rscript") is None or not r_versions().get("TMB"):
        return f"R with the TMB package is not installed: {R_INSTALL}"
    if compiler()[0] is None:
        return "g++ is not installed (apt-get install g++)"
    if importlib.util.find_spec("rpy2") is None:
        return f"rpy2 is not installed: {RPY2_INSTALL}"
    return None


# ---- the template ---------------------------------------------------------------------------------

_DATA_OBJECTS = ("adt_f64", "adt_i64", "adt_kinds", "adt_shapes", "adt_lits", "adt_offsets", "adt_sizes")


def template_source(bodies: list[Rendered]) -> str:
    """The TMB template holding ``bodies``, program k selected by ``DATA_INTEGER(adt_program) == k``."""
    cases = [
        f"    case {k}: return -Type(adt_p_{r.name}::Program::call(g, d));  // {r.name}"
        for k, r in enumerate(bodies)
    ]
    return "\n".join(
        [
            "// Generated by adtiers (engines/native/tmb.py) from the tapes of the programs below. Do not edit.",
            "#include <TMB.hpp>",
            '#include "tmb.hpp"',
            "",
            *(r.body for r in bodies),
            "",
            "template <class Type>",
            "Type objective_function<Type>::operator()() {",
            "  DATA_INTEGER(adt_program);",
            "  DATA_VECTOR(adt_f64);",
            "  DATA_IVECTOR(adt_i64);",
            "  DATA_IVECTOR(adt_kinds);",
            "  DATA_IVECTOR(adt_shapes);",
            "  DATA_VECTOR(adt_lits);",
            "  DATA_IVECTOR(adt_offsets);",
            "  DATA_IVECTOR(adt_sizes);",
            "  PARAMETER_VECTOR(theta);",
            "  const adt::Data d = adt::tmb_data(adt::doubles(adt_f64), adt::integers(adt_i64),",
            "      adt::integers<decltype(adt_kinds), int>(adt_kinds), adt::integers(adt_shapes),",
            "      adt::doubles(adt_lits), adt::integers(adt_offsets), adt::integers(adt_sizes));",
            "  std::vector<Type> x(theta.size());",
            "  for (long i = 0; i < static_cast<long>(x.size()); ++i) x[i] = theta[i];",
            "  const adt::TapeGet<Type> g{x, d};",
            "  switch (adt_program) {",
            *cases,
            "  }",
            '  Rf_error("adtiers: no program %d in this template", adt_program);',
            "  return Type(0);",
            "}",
            "",
        ]
    )


def _key_text(framework: str) -> str:
    preludes = "".join((CPP_DIR / name).read_text() for name in ("adt.hpp", "tape.hpp", "tmb.hpp"))
    return "\n".join([framework, COMPILE_FLAGS, repr(sorted(r_versions().items())), preludes])


def library_path(source: str, framework: str) -> Path:
    """The template's file in the compile cache; its stem, an identifier, is the DLL name."""
    return cache_path(f"tmb_{framework.lower()}_", source, _key_text(framework))


def _compile(source: str, framework: str, path: Path) -> None:
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        cpp = Path(tmp) / f"{path.stem}.cpp"  # TMB names the DLL after the file
        cpp.write_text(source)
        code = f'TMB::compile("{cpp}", flags = "{COMPILE_FLAGS} -I{CPP_DIR}", framework = "{framework}")'
        done = subprocess.run(
            ["Rscript", "-e", code], capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S, cwd=tmp
        )
        built = cpp.with_suffix(".so")
        if done.returncode != 0 or not built.exists():
            raise CompileError(f"TMB::compile failed ({code}):\n{(done.stdout + done.stderr)[-4000:]}")
        path.with_suffix(".cpp").write_text(source)
        os.replace(built, path)


def build(source: str, framework: str) -> Compiled:
    """The compiled template of ``source``: on disk, or compiled now by ``TMB::compile`` under the
    compile cache's lock (``engines.native.build.compile_once``)."""
    return compile_once(library_path(source, framework), functools.partial(_compile, source, framework))


# ---- R --------------------------------------------------------------------------------------------

_R_CODE = """
function(dll, path, data, theta0, rounds, min_s) {
  if (!(dll %in% names(getLoadedDLLs()))) dyn.load(path)
  obj <- TMB::MakeADFun(data, list(theta = theta0), DLL = dll, silent = TRUE)
  per_call <- function(f) {
    reps <- 1L
    repeat {
      t0 <- Sys.time(); for (i in seq_len(reps)) f()
      t <- as.numeric(Sys.time() - t0, units = "secs")
      if (t >= min_s || reps >= 2^24) break
      reps <- reps * 4L
    }
    times <- numeric(rounds)
    for (r in seq_len(rounds)) {
      t0 <- Sys.time(); for (i in seq_len(reps)) f()
      times[r] <- as.numeric(Sys.time() - t0, units = "secs") / reps
    }
    c(median(times), reps)
  }
  list(
    vg = function(x) c(obj$fn(x), obj$gr(x)),
    fn = function(x) obj$fn(x),
    he = function(x) obj$he(x),
    time = function(x) {
      vg <- per_call(function() { obj$fn(x); obj$gr(x) })
      val <- per_call(function() obj$fn(x))
      c(vg, val)
    },
    sdreport = function(x) {
      rep <- TMB::sdreport(obj, par.fixed = x, hessian.fixed = obj$he(x))
      sqrt(diag(rep$cov.fixed))
    },
    nlminb = function(x0) {
      t0 <- Sys.time()
      opt <- nlminb(x0, obj$fn, obj$gr, control = list(eval.max = 10000, iter.max = 10000))
      list(seconds = as.numeric(Sys.time() - t0, units = "secs"), convergence = opt$convergence,
           message = opt$message, loglik = -opt$objective, par = opt$par, evaluations = opt$evaluations)
    }
  )
}
"""


@functools.cache
def _r() -> Any:
    """R embedded through rpy2, with the project's R functions defined.

    Starting R sets ``LD_LIBRARY_PATH`` in this process's environment (R's lib folder, then the
    system's): R itself no longer needs it once loaded, but every Python started from here afterwards
    (a worker, a Dask nanny's child) would load the system's libraries before its own and fail
    (``_ssl``: undefined symbol). So the variable is put back as it was."""
    before = os.environ.get("LD_LIBRARY_PATH")
    import rpy2.robjects as ro

    functions = ro.r(_R_CODE)
    if before is None:
        os.environ.pop("LD_LIBRARY_PATH", None)
    else:
        os.environ["LD_LIBRARY_PATH"] = before
    return ro, functions


def _r_data(rendered: Rendered, data: Data, program: int) -> Any:
    ro, _ = _r()
    arrays = [np.asarray(data[key]) for key in rendered.data_keys]
    kinds, shapes = data_layout(rendered, arrays)
    f64, i64 = [], []
    for kind, arr in zip(rendered.data_kinds, arrays):
        (i64 if kind == I64_VECTOR else f64).append(np.ravel(arr))  # row-major, as adt::RowMatrix reads it
    floats = np.concatenate(f64) if f64 else np.zeros(0)
    ints = np.concatenate(i64).astype(np.int32) if i64 else np.zeros(0, dtype=np.int32)
    values = {
        "adt_program": ro.IntVector([program]),
        "adt_f64": ro.FloatVector(floats.astype(np.float64)),
        "adt_i64": ro.IntVector(ints),
        "adt_kinds": ro.IntVector(kinds),
        "adt_shapes": ro.IntVector(shapes),
        "adt_lits": ro.FloatVector(rendered.literals),
        "adt_offsets": ro.IntVector(rendered.offsets),
        "adt_sizes": ro.IntVector(rendered.sizes),
    }
    return ro.ListVector(values)


class TmbEngine(Engine):
    name = "tmb"
    tier = "2"
    description = "TMB (R): the tape as a TMB template on CppAD, MakeADFun, obj$fn + obj$gr through rpy2"
    language = "C++"
    memory_method = "rss"  # R's and TMB's allocations are invisible to tracemalloc
    framework = "CppAD"

    def unavailable(self) -> str | None:
        return tmb_reason()

    def versions(self) -> dict[str, str | None]:
        return super().versions() | r_versions() | {"tmb-framework": self.framework}

    def rendered(self, problem: Problem, data: Data) -> Rendered:
        program = native_program(problem, data)
        check_scalar_tape(program, f"TMB ({self.framework})")
        return render(program)

    def generated_source(self, problem: Problem, data: Data) -> str:
        return template_source([self.rendered(problem, data)])

    def _template(self, rendered: Rendered) -> tuple[str, int]:
        bundle = rendered_builtins()
        names = list(bundle)
        if rendered.name in names:
            return template_source(list(bundle.values())), names.index(rendered.name)
        return template_source([rendered]), 0

    def _prepare(self, problem: Problem, data: Data) -> Prepared:
        n = problem.n_of(data)
        started = time.perf_counter()
        rendered = self.rendered(problem, data)  # Unsupported here, before anything compiles
        source, program = self._template(rendered)
        lib = build(source, self.framework)
        theta0 = problem.true_theta(n)
        with _R_LOCK:
            ro, make = _r()
            handle = make(
                lib.path.stem,
                str(lib.path),
                _r_data(rendered, data, program),
                ro.FloatVector(theta0),
                IN_R_ROUNDS,
                IN_R_MIN_S,
            )
        r_vg, r_fn, r_he = handle.rx2("vg"), handle.rx2("fn"), handle.rx2("he")

        def vg(theta: np.ndarray) -> tuple[Any, Any]:
            with _R_LOCK:
                out = np.asarray(r_vg(ro.FloatVector(theta)))
            return -out[0], -out[1:]

        def val(theta: np.ndarray) -> Any:
            with _R_LOCK:
                return -np.asarray(r_fn(ro.FloatVector(theta)))[0]

        def hess(theta: np.ndarray) -> Any:
            with _R_LOCK:
                return -np.asarray(r_he(ro.FloatVector(theta))).reshape(theta.size, theta.size)

        def stderr_at(theta: np.ndarray) -> np.ndarray:
            """TMB's ``sdreport`` standard errors at ``theta``: ``par.fixed = theta`` and
            ``hessian.fixed = obj$he(theta)``, TMB's AD Hessian (left to itself sdreport would take
            ``optimHess``'s finite differences of ``obj$gr``)."""
            with _R_LOCK:
                return np.asarray(handle.rx2("sdreport")(ro.FloatVector(np.asarray(theta, float))))

        def optimise(theta0: np.ndarray) -> dict[str, Any]:
            """TMB's own path to a fit: ``nlminb(x0, obj$fn, obj$gr)`` inside R, timed by R's clock."""
            with _R_LOCK:
                out = handle.rx2("nlminb")(ro.FloatVector(np.asarray(theta0, float)))
                got = {key: np.asarray(out.rx2(key)) for key in out.names}
            return {
                "method": "nlminb(x0, obj$fn, obj$gr) inside R, R's clock",
                "seconds": float(got["seconds"][0]),
                "converged": int(got["convergence"][0]) == 0,
                "message": str(got["message"][0]),
                "loglik": float(got["loglik"][0]),
                "estimate": got["par"].astype(np.float64),
                "gradient_evaluations": int(got["evaluations"][1]),
            }

        prepare_s = time.perf_counter() - started
        vg(theta0)
        with _R_LOCK:
            timed = np.asarray(handle.rx2("time")(ro.FloatVector(theta0)))
        info = {
            "library": str(lib.path),
            "framework": self.framework,
            "program": program,
            "compiled": lib.compiled,
            "compile_s": lib.compile_s,
            "prepare_s": prepare_s,
            "in_r_vg_seconds": float(timed[0]),
            "in_r_vg_calls": int(timed[1]),
            "in_r_value_seconds": float(timed[2]),
            "in_r_value_calls": int(timed[3]),
            "in_r_clock": "R Sys.time(), median of rounds of calls of obj$fn(x); obj$gr(x) inside R",
            "stderr_at": stderr_at,
            "optimise": optimise,
        }
        return Prepared(problem, n, vg, val, info, hess=hess)


class TmbTmbadEngine(TmbEngine):
    name = "tmb-tmbad"
    description = (
        "TMB (R) on TMBad: the tape as a TMB template, framework TMBad, obj$fn + obj$gr through rpy2"
    )
    framework = "TMBad"
