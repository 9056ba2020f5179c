"""Engines in C++: the tape rendered as C++ for a production AD library, compiled, called through ctypes."""
