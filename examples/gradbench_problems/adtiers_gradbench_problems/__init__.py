"""Two GradBench-style problems for adtiers, registered through the ``adtiers.problems`` entry points."""
