"""Decision analysis and parameter sweeps built on the engine."""
