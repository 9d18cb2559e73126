"""``omsbridge demo``: a store day posted through local emulators, with no account anywhere."""

from omsbridge.demo.runner import DemoReport, StepOutcome, run_demo

__all__ = ["DemoReport", "StepOutcome", "run_demo"]
