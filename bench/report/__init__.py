"""Human-readable renderings (tables, plots, leaderboards) of result dictionaries."""
