"""Engines without AD: hand-written gradients to measure against, and the harness floor."""
