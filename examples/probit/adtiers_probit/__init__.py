"""An outside primitive (log_ndtr) and an outside problem that uses it (probit)."""
