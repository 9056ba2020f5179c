"""Measuring: worker processes, the cell (prepare, check, time), counts, memory, machine and provenance."""
