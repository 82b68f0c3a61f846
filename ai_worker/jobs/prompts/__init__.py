"""Prompt templates kept as package data (`<job>_<role>.<language>.txt`, `string.Template` syntax).

Editing a prompt changes no code; every language ships the same set of roles, which the tests check.
"""
