"""`pyk3s server`'s start-up in one package, below the command line and above every part it runs.

* :mod:`.config`: :class:`~.config.ServerConfig`, validated from flag values (errors name the flag),
  and the settings of each part it starts (API, manifests, controllers, embedded agent).
* :mod:`.run`: the datastore, bootstrap or join of a shared datastore, the API, the token and
  kubeconfig, then the control plane, compaction and the embedded agent side by side.
* :mod:`.controlplane`: the packaged manifests, the controllers (on the leader) and the apiserver
  endpoints (on every server).
* :mod:`.ha`: what servers sharing a datastore agree on (bootstrap data, critical configuration,
  the ``kubernetes`` Endpoints).
* :mod:`.embedded_agent`: the server's own agent, in-process.
"""
