"""Engine tests (a package, so the fault tests in tests/reliability can share its fake handlers and harness)."""
