"""Long runs against the simulator as separate processes: the soak (``python -m benchmarks.soak``) and
the API outage reconvergence (``python -m benchmarks.soak.outage``). Neither is part of the test run;
both print figures and can write them as JSON (see README.md here)."""
