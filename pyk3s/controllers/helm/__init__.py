"""K3s's helm-controller for pyk3s: HelmChart and HelmChartConfig, with the packaged charts rendered natively.

- :mod:`.crds` the ``helm.cattle.io/v1`` kinds; :mod:`.charts` the packaged charts (``CHARTS``);
- :mod:`.values`, :mod:`.sources`, :mod:`.shape` Helm's value semantics and checks;
- :mod:`.traefik`, :mod:`.traefik_crd` the charts themselves (values in, objects out, pure);
- :mod:`.apply`, :mod:`.release` installing objects and recording releases as Helm does;
- :mod:`.controller` the reconcile loop; :mod:`.handover` moving objects a packaged manifest applied
  directly into the release that now renders them.
"""

from .charts import CHARTS, identify
from .controller import FINALIZER, HelmController
from .crds import ensure_crds
from .handover import hand_over

__all__ = ["CHARTS", "FINALIZER", "HelmController", "ensure_crds", "hand_over", "identify"]
