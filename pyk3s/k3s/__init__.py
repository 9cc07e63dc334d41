"""K3s's conventions that several parts of pyk3s share, in one low package that imports no other.

* :mod:`.token`: the join token's formats (``K10<ca-hash>::<user>:<password>`` or a bare password),
  the one parser the CLI, the API's authentication and the join endpoint use, and the server's token file.
* :mod:`.node`: the node-name rule and the node-password guard (hash, check, Secret, K3s's message).
* :mod:`.names`: label, annotation and object names that more than one package writes or reads.
* :mod:`.network`: the cluster network's K3s defaults (10.42.0.0/16, 10.43.0.0/16, 10.43.0.10, cluster.local).
* :mod:`.paths`: where state and configuration live (data dir, kubeconfig, config file).
* :mod:`.version`: pyk3s's version and the Kubernetes release it reports.

Nothing here imports another pyk3s package, so any layer may use it.
"""
