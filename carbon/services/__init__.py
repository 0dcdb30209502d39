"""The carbon core's services: the only code that writes several rows or moves points.

Feature apps (rewards, biodiversity, zerowaste) import from here, never the reverse.
"""
