"""Micro-personas: templates, real-time inference, history and discovery."""
