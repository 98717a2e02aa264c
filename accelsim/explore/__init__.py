"""Design-space exploration: one point end to end (`point.run_point`, what `accelsim run` does);
sweeps, stores and Pareto fronts build on it."""
