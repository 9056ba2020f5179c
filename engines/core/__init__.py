"""What every engine shares: the primitive table, the op namespace, the contract, the registry."""
