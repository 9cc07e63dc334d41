"""The shape of the Traefik chart's values: its defaults plus the keys its templates read without one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..shape import ANY, MAP, ListOf, MapOf, Obj, Shape, from_defaults, leaf, with_overrides

__all__ = ["shape_for"]

_INT_OR_STR = leaf("int|str")

ENTRY_POINT = Obj({
    "port": leaf("int"), "containerPort": leaf("int"), "hostPort": leaf("int"), "hostIP": leaf("str"),
    "expose": MapOf(leaf("bool")), "exposedPort": leaf("int"), "targetPort": _INT_OR_STR,
    "protocol": leaf("str"), "nodePort": leaf("int"), "appProtocol": leaf("str"), "asDefault": leaf("bool"),
    "allowACMEByPass": leaf("bool"), "single": leaf("bool"), "redirectTo": ANY,
    "redirections": Obj({"entryPoint": Obj({"to": leaf("str"), "scheme": leaf("str"), "permanent": leaf("bool"),
                                            "priority": leaf("int")})}),
    "forwardedHeaders": Obj({"trustedIPs": ListOf(leaf("str")), "insecure": leaf("bool")}),
    "proxyProtocol": Obj({"trustedIPs": ListOf(leaf("str")), "insecure": leaf("bool")}),
    "transport": Obj({
        "respondingTimeouts": Obj({"readTimeout": _INT_OR_STR, "writeTimeout": _INT_OR_STR,
                                   "idleTimeout": _INT_OR_STR}),
        "lifeCycle": Obj({"requestAcceptGraceTimeout": _INT_OR_STR, "graceTimeOut": _INT_OR_STR}),
        "keepAliveMaxRequests": leaf("int"), "keepAliveMaxTime": _INT_OR_STR,
    }),
    "tls": Obj({"enabled": leaf("bool"), "options": leaf("str"), "certResolver": leaf("str"),
                "domains": ListOf(Obj({"main": leaf("str"), "sans": ListOf(leaf("str"))}))}),
    "http3": Obj({"enabled": leaf("bool"), "advertisedPort": leaf("int")}),
    "middlewares": ListOf(leaf("str")),
})

INGRESS_ROUTE = Obj({
    "enabled": leaf("bool"), "annotations": MAP, "labels": MAP, "matchRule": leaf("str"), "services": leaf("list"),
    "entryPoints": ListOf(leaf("str")), "middlewares": leaf("list"), "tls": MAP,
})

TLS_OPTION = Obj({
    "labels": MAP, "alpnProtocols": leaf("list"), "cipherSuites": leaf("list"), "clientAuth": MAP,
    "curvePreferences": leaf("list"), "disableSessionTickets": leaf("bool"), "maxVersion": leaf("str"),
    "minVersion": leaf("str"), "sniStrict": leaf("bool"),
})

OVERRIDES: dict[str, Shape] = {
    # keys the templates read that have a null default or none at all
    "nameOverride": leaf("str"), "fullnameOverride": leaf("str"),
    "image.registry": leaf("str"), "image.tag": leaf("str"),
    "deployment.revisionHistoryLimit": leaf("int"), "deployment.healthchecksPort": leaf("int"),
    "deployment.healthchecksScheme": leaf("str"), "deployment.goMemLimitPercentage": leaf("num"),
    "podDisruptionBudget.maxUnavailable": _INT_OR_STR, "podDisruptionBudget.minAvailable": _INT_OR_STR,
    "providers.kubernetesCRD.labelSelector": leaf("str"),
    "providers.kubernetesIngress.labelSelector": leaf("str"),
    "providers.kubernetesIngress.ingressClass": leaf("str"),
    "providers.kubernetesGateway": ANY, "gateway": ANY, "gatewayClass": ANY,
    "logs.general.format": leaf("str"), "logs.access.format": leaf("str"), "logs.access.filePath": leaf("str"),
    "logs.access.bufferingSize": leaf("int"),
    "metrics.prometheus.addEntryPointsLabels": leaf("bool"), "metrics.prometheus.addRoutersLabels": leaf("bool"),
    "metrics.prometheus.addServicesLabels": leaf("bool"), "metrics.prometheus.disableAPICheck": leaf("bool"),
    "metrics.prometheus.serviceMonitor": ANY, "metrics.prometheus.prometheusRule": ANY,
    "metrics.datadog": MAP, "metrics.influxdb2": MAP, "metrics.statsd": MAP,
    "metrics.otlp.addEntryPointsLabels": leaf("bool"), "metrics.otlp.addRoutersLabels": leaf("bool"),
    "metrics.otlp.addServicesLabels": leaf("bool"), "metrics.otlp.serviceName": leaf("str"),
    "metrics.otlp.http.tls.insecureSkipVerify": leaf("bool"),
    "tracing.serviceName": leaf("str"), "tracing.sampleRate": leaf("num"),
    "global.azure": ANY, "hub": ANY, "oci_meta": ANY, "autoscaling": ANY, "persistence.annotations": MAP,
    "experimental.plugins": MAP, "experimental.localPlugins": MAP,
    "updateStrategy.rollingUpdate.maxUnavailable": _INT_OR_STR,
    "updateStrategy.rollingUpdate.maxSurge": _INT_OR_STR,
    # free-form mappings and lists whose default is not empty
    "securityContext": MAP, "podSecurityContext": MAP,
    "additionalArguments": ListOf(leaf("str")),
    # mappings of named entries
    "ports": MapOf(ENTRY_POINT), "ingressRoute": MapOf(INGRESS_ROUTE), "tlsOptions": MapOf(TLS_OPTION),
    "tlsStore": MapOf(MAP), "service.additionalServices": MapOf(MAP),
    "service.ipFamilyPolicy": leaf("str"), "service.ipFamilies": ListOf(leaf("str")),
    "service.loadBalancerClass": leaf("str"),
    # keys of earlier chart versions that K3s users still carry (reported, see support.REMOVED)
    "globalArguments": leaf("list"), "image.name": leaf("str"), "podAnnotations": MAP,
}


def shape_for(defaults: Mapping[str, Any]) -> Shape:
    return with_overrides(from_defaults(dict(defaults)), OVERRIDES)
