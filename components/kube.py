"""Kubernetes building blocks more than one workload component uses."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s


def http_service(
    name: str, metadata: k8s.meta.v1.ObjectMetaArgs, app: str, port: int, opts: pulumi.ResourceOptions
) -> k8s.core.v1.Service:
    """``{name}-service``: a ClusterIP Service for the pods labelled ``app``, one port named ``http``.

    The container port it targets must be named ``http`` too; ``app_protocol`` tells the mesh the protocol.
    """
    return k8s.core.v1.Service(
        f"{name}-service",
        k8s.core.v1.ServiceInitArgs(
            metadata=metadata,
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector={"app.kubernetes.io/name": app},
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=port, target_port="http", app_protocol="http")],
            ),
        ),
        opts=opts,
    )
