"""Pooled reductions sold by the tonne to enterprises, with retirement certificates."""
