"""Adapters of outside AD frameworks: the same ``loglik`` run on their arrays, differentiated by them.

``adapter`` is the skeleton every adapter fills in (op namespace, data to device, gradient, sync,
Hessian); each ``*_engine`` module holds only what is its framework's own.
"""
