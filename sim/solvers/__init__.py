"""Solvers beside the engine: exact enumeration, the game graph, strategic equilibria."""
