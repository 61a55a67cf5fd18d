"""Conveyor: CI/CD pipelines as DAGs of Kubernetes Jobs, and the same pipelines on a laptop."""

__version__ = "0.1.0"
