"""Tenants, their write and secret keys, and authentication."""
