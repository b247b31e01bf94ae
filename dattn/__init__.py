"""dattn."""
