"""Fixtures for tests against the local Kubernetes cluster; defined in `cluster.py`."""

from tests.integration.cluster import kubeconfig, kubeconfig_for, kubectl, namespace

__all__ = ["kubeconfig", "kubeconfig_for", "kubectl", "namespace"]
