"""``omsbridge demo``: a store day posted through local emulators, with no account anywhere."""

from omsbridge.demo.runner import DEMO_MERCHANTS, DemoReport, StepOutcome, run_demo

__all__ = ["DEMO_MERCHANTS", "DemoReport", "StepOutcome", "run_demo"]
