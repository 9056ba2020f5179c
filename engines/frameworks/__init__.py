"""Adapters of outside AD frameworks: the same ``loglik`` run on their arrays, differentiated by them."""
