"""The flags of `pyk3s server` and `pyk3s agent`, with K3s's names, defaults and environment variables.

One row per flag. A command's table is a sum of groups: `pyk3s server` takes the common, token,
server and node flags (the node flags for its embedded agent); `pyk3s agent` the common, token and node
flags plus ``--server`` (joining), or the common and node flags plus the ``--kubeconfig`` group (an
agent given its API server and cluster network by hand, without joining).
"""

from __future__ import annotations

from pyk3s.k3s.paths import default_data_dir

from .flags import Flag

__all__ = ["AGENT_FLAGS", "AGENT_KUBECONFIG_FLAGS", "SERVER_FLAGS"]

COMMON_FLAGS: tuple[Flag, ...] = (
    Flag("config", "config file to read flags from", env=("K3S_CONFIG_FILE",), short="c",
         default="/etc/rancher/pyk3s/config.yaml"),
    Flag("debug", "turn on debug logs", env=("K3S_DEBUG",), kind="bool"),
    Flag("data-dir", "folder to hold state", default=None, env=("K3S_DATA_DIR",), short="d",
         metavar=default_data_dir()),
)

TOKEN_FLAGS: tuple[Flag, ...] = (
    Flag("token", "shared secret used to join a server or agent to a cluster", env=("K3S_TOKEN",), short="t"),
    Flag("token-file", "file containing the token", env=("K3S_TOKEN_FILE",)),
)

JOIN_FLAGS: tuple[Flag, ...] = (
    Flag("server", "server to connect to (https://<addr>:6443)", env=("K3S_URL",), short="s"),
)

# What a node is told, by `pyk3s agent` and by `pyk3s server` for its embedded agent.
NODE_FLAGS: tuple[Flag, ...] = (
    Flag("node-name", "node name", env=("K3S_NODE_NAME",)),
    Flag("with-node-id", "append a stable random id to the node name", kind="bool"),
    Flag("node-ip", "IPv4/IPv6 addresses to advertise for the node", kind="list", short="i"),
    Flag("node-external-ip", "external IPv4/IPv6 addresses to advertise for the node", kind="list"),
    Flag("node-label", "labels to add at registration (key=value)", kind="list"),
    Flag("node-taint", "taints to add at registration (key=value:Effect)", kind="list"),
    Flag("resolv-conf", "kubelet resolv.conf file for dnsPolicy Default pods", env=("K3S_RESOLV_CONF",)),
    Flag("bridge-name", "name of the pod bridge on this node", default="pyk3s0"),
    Flag("kubelet-port", "port of the kubelet API", default=10250, kind="int"),
    Flag("flannel-iface", "override the interface pod traffic between nodes uses (default: the --node-ip's)"),
    Flag("kubelet-arg", "kubelet flag as name=value (image-gc-high-threshold, image-gc-low-threshold, "
         "image-minimum-gc-age)", kind="list"),
    Flag("disable-network-policy", "do not enforce NetworkPolicies on this node (a server's choice applies to "
         "the agents that join it)", kind="bool"),
)

# The joining agent's local load balancer to the API servers (after the node flags, as K3s lists it).
LB_FLAGS: tuple[Flag, ...] = (
    Flag("lb-server-port", "local port of the agent's API load balancer", default=6444, kind="int",
         env=("K3S_LB_SERVER_PORT",)),
    Flag("container-runtime", "auto: run pyk3s's own containerd when it is on PATH; containerd: require it; "
         "none: only the process runtime (built-in images)", default="auto"),
    Flag("container-runtime-endpoint", "use this CRI socket instead of pyk3s's own containerd",
         env=("CONTAINER_RUNTIME_ENDPOINT",)),
    Flag("default-runtime", "runtime of pods without runtimeClassName whose images are all built in: "
         "process or containerd", default="process"),
    Flag("pause-image", "pod sandbox image (pyk3s builds and imports its own under the default name)",
         default="docker.io/pyk3s/pause:3.10"),
    Flag("private-registry", "containerd registry configuration (K3s's registries.yaml)",
         default="/etc/rancher/pyk3s/registries.yaml", env=("K3S_PRIVATE_REGISTRY",)),
    Flag("disable-default-registry-endpoint", "pull only from the mirror endpoints of registries.yaml",
         kind="bool"),
    Flag("snapshotter", "containerd snapshotter", default="overlayfs"),
)

SERVER_ONLY_FLAGS: tuple[Flag, ...] = (
    Flag("bind-address", "address the API server listens on", default="0.0.0.0"),
    Flag("https-listen-port", "HTTPS listen port", default=6443, kind="int"),
    Flag("advertise-address", "address published for the API server (default: node-ip)"),
    Flag("advertise-port", "port published for the API server (default: https-listen-port)", kind="int"),
    Flag("tls-san", "additional hostnames or IPs as Subject Alternative Names in the serving certificate",
         kind="list"),
    Flag("agent-token", "shared secret used to join agents", env=("K3S_AGENT_TOKEN",)),
    Flag("write-kubeconfig", "write the admin kubeconfig to this file", env=("K3S_KUBECONFIG_OUTPUT",),
         short="o"),
    Flag("write-kubeconfig-mode", "write the kubeconfig with this mode", env=("K3S_KUBECONFIG_MODE",)),
    Flag("cluster-cidr", "IPv4/IPv6 network CIDRs for pod IPs", default="10.42.0.0/16"),
    Flag("service-cidr", "IPv4/IPv6 network CIDRs for service IPs", default="10.43.0.0/16"),
    Flag("service-node-port-range", "port range reserved for NodePort services", default="30000-32767"),
    Flag("cluster-dns", "IPv4 cluster IP for the coredns service (default: 10th IP of the service CIDR)"),
    Flag("cluster-domain", "cluster domain", default="cluster.local"),
    Flag("disable", "do not deploy packaged components and delete any deployed ones "
         "(valid items: coredns, servicelb, traefik, or any packaged manifest name)", kind="list"),
    Flag("disable-agent", "do not run a local agent and register a local kubelet", kind="bool"),
    Flag("disable-scheduler", "do not run the scheduler", kind="bool"),
    Flag("disable-kube-proxy", "do not run the service proxy", kind="bool"),
    Flag("disable-cloud-controller", "do not run the node address / ServiceLB cloud controller", kind="bool"),
    Flag("servicelb-namespace", "namespace of the svclb pods", default="kube-system"),
    Flag("system-default-registry", "private registry prefix for all system images",
         env=("K3S_SYSTEM_DEFAULT_REGISTRY",)),
    Flag("datastore-endpoint", "datastore: sqlite (default), postgres://..., or etcd http(s)://host:port[,...]",
         env=("K3S_DATASTORE_ENDPOINT",)),
    Flag("datastore-cafile", "TLS CA file for the datastore", env=("K3S_DATASTORE_CAFILE",)),
    Flag("datastore-certfile", "TLS client certificate for the datastore", env=("K3S_DATASTORE_CERTFILE",)),
    Flag("datastore-keyfile", "TLS client key for the datastore", env=("K3S_DATASTORE_KEYFILE",)),
    Flag("flannel-backend", "pod traffic between nodes: vxlan, host-gw or none", default="vxlan"),
    Flag("flannel-external-ip", "use node external IP addresses for the tunnel between nodes", kind="bool"),
    Flag("flannel-ipv6-masq", "masquerade IPv6 pod traffic leaving the cluster", kind="bool"),
    Flag("cluster-init", "accepted for compatibility (use --datastore-endpoint for HA)", kind="bool",
         env=("K3S_CLUSTER_INIT",)),
    Flag("manifests-rescan-interval", "seconds between full rescans of the manifests directory",
         default=15, kind="int"),
    Flag("node-monitor-grace-period", "seconds without a heartbeat before a node is NotReady",
         default=40, kind="int"),
    Flag("pod-eviction-timeout", "seconds a NotReady node's pods are kept (default toleration)",
         default=300, kind="int"),
)

# `pyk3s agent --kubeconfig FILE`: no join, so the cluster network and the kubelet's certificates come
# from these flags instead of the server.
KUBECONFIG_FLAGS: tuple[Flag, ...] = (
    Flag("kubeconfig", "run against the API server of this kubeconfig instead of joining with --server",
         env=("KUBECONFIG",)),
    Flag("cluster-cidr", "IPv4/IPv6 network CIDRs for pod IPs (with --kubeconfig)", kind="list",
         metavar="10.42.0.0/16"),
    Flag("service-cidr", "IPv4/IPv6 network CIDRs for service IPs (with --kubeconfig)", kind="list",
         metavar="10.43.0.0/16"),
    Flag("cluster-dns", "cluster DNS addresses given to pods (with --kubeconfig)", kind="list",
         metavar="10.43.0.10"),
    Flag("cluster-domain", "cluster domain (with --kubeconfig)", default="cluster.local"),
    Flag("flannel-backend", "pod traffic between nodes: vxlan, host-gw or none (with --kubeconfig)", default="vxlan"),
    Flag("flannel-external-ip", "use node external IPs for the tunnel (with --kubeconfig)", kind="bool"),
    Flag("flannel-ipv6-masq", "masquerade IPv6 pod traffic leaving the cluster (with --kubeconfig)", kind="bool"),
    Flag("kubelet-cert", "kubelet serving certificate (with --kubeconfig; none: plain HTTP)"),
    Flag("kubelet-key", "kubelet serving key (with --kubeconfig)"),
    Flag("client-ca", "CA of the clients allowed to call the kubelet, also given to pods (with --kubeconfig)"),
)

SERVER_FLAGS: tuple[Flag, ...] = COMMON_FLAGS + TOKEN_FLAGS + SERVER_ONLY_FLAGS + JOIN_FLAGS + NODE_FLAGS + LB_FLAGS
AGENT_FLAGS: tuple[Flag, ...] = COMMON_FLAGS + TOKEN_FLAGS + JOIN_FLAGS + NODE_FLAGS + LB_FLAGS
AGENT_KUBECONFIG_FLAGS: tuple[Flag, ...] = COMMON_FLAGS + NODE_FLAGS + KUBECONFIG_FLAGS
