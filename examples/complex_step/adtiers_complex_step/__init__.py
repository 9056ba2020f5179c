"""An example outside engine for adtiers, registered through the ``adtiers.engines`` entry point."""
