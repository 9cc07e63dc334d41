"""The network map (``pyk3s map``): one read-only page that shows how the cluster's traffic flows, and
why, built from watches and from the engines of the ``explain`` commands.

Modules, from the bottom up: ``objects`` (readers of API objects), the pure views ``nodes``,
``loadbalancer``, ``services``, ``ingress`` (the ingress's own compile step, as ``pyk3s ingress
explain`` runs it), ``cache`` (the table of watched kinds, ``SOURCES``, their informers and change
notices), ``state`` (views memoized per revision), the trace (``hops``, ``trace_dns``, ``trace``),
``web`` (the page, ``/api/*`` and the event stream) and ``run`` (``pyk3s map``). ``static/`` holds the
page: plain HTML, CSS and JavaScript, no build step.
"""

__all__: list[str] = []
