"""Statistics over measurements: replicate processes, sample summaries, comparing two runs."""
