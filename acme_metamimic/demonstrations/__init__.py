"""Demonstrations: scripted demonstrators and demonstration datasets."""
