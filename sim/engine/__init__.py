"""Lockstep Monte Carlo: random streams, batches of runs, the runner."""
