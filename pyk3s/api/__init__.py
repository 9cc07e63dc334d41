"""The Kubernetes-compatible API server. Its modules import one way, from the edge down:

* ``server`` starts a running API server: PKI, authentication, RBAC, reviews, kubelet relay, HTTPS
  (``http``, ``proxy``, ``portforward``, ``spdy``, ``authn``, ``rbac``, ``reviews``, ``join``, ``certs``).
* ``app.ApiServer`` builds the core once, hands each part the collaborators it uses, authorizes and
  dispatches requests; it answers discovery, OpenAPI, /version and health itself.
* ``subresources`` and ``handlers`` turn requests into registry calls (``watchstream`` for watches,
  ``tables`` for Table answers); ``bootstrap`` writes the objects the server keeps itself.
* ``registry.Registry`` gives objects their Kubernetes semantics on the store: reads, create,
  update, delete. Every create and update goes through ``admit.admit``, the one admission pipeline
  (fieldValidation in ``fieldcheck``, the namespace gate in ``namespaces``, ``strategy``, the kind
  hooks in ``hooks``, defaults and validation in ``admission``, managedFields in ``patch``).
* ``catalog.ResourceCatalog`` holds the served resources (``resources``) and installs CRD rows
  (``crds``); ``watch.WatchCache`` fans the store's changes out to watchers.
* Below them, importing nothing above: ``store`` (the datastore engines), ``admission``, ``patch``,
  ``printers``, ``protobuf``, and the small shared modules (``errors``, ``request``, ``codec``, ``tasks``, ...).

Nothing here imports the agent, the client, controllers, add-ons, the server package or the CLI.
"""
