"""The main job: resolve a protocol and its data, get a model, score, report, leaderboard."""
