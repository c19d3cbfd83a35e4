"""MetaMimic for Acme."""
