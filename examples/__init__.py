"""Example lambda-flow applications, used by ``lambda-flow demo`` and the docs."""
