"""The example engine passes the adtiers conformance kit."""

from adtiers_complex_step.engine import ComplexStepEngine

from harness.testing import check_engine


def test_complex_step_engine_passes_the_kit():
    check_engine(ComplexStepEngine())
