"""Which engines exist: the built-in table, plus outside packages through entry points.

Built-in engines are listed in ``BUILTIN`` as ``module:Class`` strings, imported only when asked
for, so that ``adtiers list`` does not pay for importing every framework. An outside package
registers an engine in its own ``pyproject.toml``::

    [project.entry-points."adtiers.engines"]
    my-engine = "my_package.engine:MyEngine"

The entry point may name an ``Engine`` subclass or an instance. After that it appears in
``adtiers list``, ``check``, ``bench`` and the report with no other change.

An entry point that cannot be loaded (its package fails to import, it names no ``Engine``, or the
engine calls itself by another name) must not stop a run of every other engine: ``load_engine``
returns a ``BrokenEngine`` in its place, which ``check`` and ``bench`` show with the reason.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from engines.core.contract import Engine

ENTRY_POINT_GROUP = "adtiers.engines"

BUILTIN: dict[str, str] = {
    "manual": "engines.baselines.manual:ManualEngine",
    "manual-numba": "engines.baselines.manual_numba:ManualNumbaEngine",
    "graph": "engines.tiers.graph:GraphEngine",
    "graph-scalar": "engines.tiers.graph_scalar:GraphScalarEngine",
    "tape": "engines.tiers.tape.tape_engine:TapeEngine",
    "compiled": "engines.tiers.tape.compiled:CompiledEngine",
    "gpu": "engines.tiers.tape.gpu:GpuEngine",
    "gpu-f32": "engines.tiers.tape.gpu:GpuFloat32Engine",
    "autograd": "engines.frameworks.autograd_engine:AutogradEngine",
    "micrograd": "engines.frameworks.micrograd_engine:MicrogradEngine",
    "jax": "engines.frameworks.jax_engine:JaxEngine",
    "jax-eager": "engines.frameworks.jax_engine:JaxEagerEngine",
    "jax-cuda": "engines.frameworks.jax_engine:JaxCudaEngine",
    "torch": "engines.frameworks.torch_engine:TorchEngine",
    "torch-compile": "engines.frameworks.torch_engine:TorchCompileEngine",
    "torch-cuda": "engines.frameworks.torch_engine:TorchCudaEngine",
    "tensorflow": "engines.frameworks.tensorflow_engine:TensorflowEngine",
    "tensorflow-graph": "engines.frameworks.tensorflow_engine:TensorflowGraphEngine",
    "tensorflow-xla": "engines.frameworks.tensorflow_engine:TensorflowXlaEngine",
    "enzyme": "engines.frameworks.enzyme_engine:EnzymeEngine",
    "pytensor": "engines.frameworks.pytensor_engine:PytensorEngine",
    "pytensor-numba": "engines.frameworks.pytensor_engine:PytensorNumbaEngine",
    "tinygrad": "engines.frameworks.tinygrad_engine:TinygradEngine",
    "casadi-sx": "engines.frameworks.casadi_engine:CasadiEngine",
    "casadi-mx": "engines.frameworks.casadi_engine:CasadiMxEngine",
    "casadi-mx-c": "engines.frameworks.casadi_engine:CasadiMxCodegenEngine",
    "stan": "engines.native.stan:StanEngine",
    "stan-varmat": "engines.native.stan_varmat:StanVarmatEngine",
    "stan-lpdf": "engines.native.stan_lpdf:StanLpdfEngine",
    "cppad": "engines.native.cppad:CppadEngine",
    "adolc": "engines.native.adolc:AdolcEngine",
    "tmb": "engines.native.tmb:TmbEngine",
    "tmb-tmbad": "engines.native.tmb:TmbTmbadEngine",
    "null": "engines.baselines.null:NullEngine",
}


DEFAULT_GROUP = (
    "manual",
    "manual-numba",
    "graph",
    "graph-scalar:1e4",
    "tape",
    "compiled",
    "jax",
    "torch",
    "stan-varmat",
    "stan:1e4",
    "stan-lpdf:1e4",
    "cppad",
    "tensorflow-graph",
    "enzyme",
    "tmb:1e4",
)
"""``@default``, what ``make bench`` times (at two processes per cell): the baselines, the in-house
tiers, one engine per production library family, and the systems the seeds name: ``graph-scalar``
against ``graph`` and ``stan`` / ``stan-lpdf`` against ``stan-varmat`` (the report's
array-of-structs section), ``tmb`` (the vignette's Tier 2 example). ``name:1e4`` runs an engine up
to n = 1e4 only (``harness.selection.engine_caps``): the sizes that show the point (struct-of-arrays
pulling ahead, TMB's compile against its calls) within the 20-minute fresh-clone budget of a
2-core machine; ``@all`` (``make bench-all``) runs every engine at every size."""


def engine_groups() -> dict[str, list[str]]:
    """Named sets of engines, written ``@name`` wherever engines are listed: ``@default``, ``@all``,
    and by where the built-in lives: ``@baselines``, ``@tiers``, ``@frameworks``, ``@native``;
    ``@outside`` for entry points."""
    groups: dict[str, list[str]] = {"default": list(DEFAULT_GROUP), "all": engine_names()}
    for name, spec in BUILTIN.items():
        groups.setdefault(spec.split(".")[1], []).append(name)
    groups["outside"] = [n for n in engine_names() if n not in BUILTIN]
    return groups


def _load(target: object) -> Engine:
    engine = target() if isinstance(target, type) else target
    if not isinstance(engine, Engine):
        raise TypeError(f"{target!r} is not an adtiers Engine (subclass engines.core.contract.Engine)")
    return engine


def _import(spec: str) -> object:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def engine_names() -> list[str]:
    """Every registered engine's name: built-ins first, then entry points."""
    names = list(BUILTIN)
    names += [ep.name for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in BUILTIN]
    return names


def get_engine(name: str) -> Engine:
    """The engine called ``name``, or a KeyError that lists the known ones."""
    if name in BUILTIN:
        engine = _load(_import(BUILTIN[name]))
    else:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if not found:
            raise KeyError(f"unknown engine {name!r}; known engines: {', '.join(engine_names())}")
        engine = _load(found[0].load())
    if engine.name != name:
        raise TypeError(f"engine registered as {name!r} calls itself {engine.name!r}")
    return engine


class BrokenEngine(Engine):
    """Stands for a registered engine that cannot be loaded: never prepared, never sent to a worker.

    ``reason`` says what is wrong (``broken entry point my-engine = "pkg.mod:Cls": ImportError: ...``).
    """

    tier, description = "", "cannot be loaded"

    def __init__(self, name: str, reason: str):
        self.name, self.reason = name, reason

    def unavailable(self) -> str | None:
        return self.reason

    def _prepare(self, problem, data):
        raise RuntimeError(self.reason)


def load_engine(name: str) -> Engine:
    """``get_engine(name)``, or a ``BrokenEngine`` saying why it cannot be loaded (a KeyError for
    a name that is not registered at all)."""
    if name not in engine_names():
        return get_engine(name)
    try:
        return get_engine(name)
    except Exception as err:  # noqa: BLE001 -- an outside package's bug costs its engine only
        if name in BUILTIN:
            where = f"broken built-in engine {name} = {BUILTIN[name]!r}"
        else:
            found = [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
            where = f"broken entry point {name} = {found[0] if found else '?'!r}"
        return BrokenEngine(name, f"{where}: {type(err).__name__}: {err}")


def all_engines() -> list[Engine]:
    return [get_engine(name) for name in engine_names()]
