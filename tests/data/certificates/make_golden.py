"""Write the golden certificates of the current schema version (run once per schema major
version; commit the output into ``v<major>_<minor>/``).

    python tests/data/certificates/make_golden.py

The files of the current major version must keep loading (tests/certificates/
test_cert_serialize.py); never regenerate them for a released version. ``v1_0/`` holds the
certificates of schema 1.0 (before proof trees), which are refused with a clear message.
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "certificates"))

from cert_helpers import (  # noqa: E402
    bab_cert,
    golden_network,
    golden_pruned,
    milp_cert,
    robust_prop,
    verified_cert,
)

from nncert.certificates import NoEvidence, Provenance, save_certificate, transfer  # noqa: E402
from nncert.certificates.model import SCHEMA_VERSION  # noqa: E402
from nncert.verify.result import Verdict  # noqa: E402

PROV = Provenance(
    tool_version="0.1.0",
    python="3.11.0",
    numpy="2.0.0",
    solvers={},
    method="",
    options={"time_limit": 30.0, "upper": math.inf},
    seed=0,
    time=0.5,
    created="2025-01-01T00:00:00+00:00",
)


def main() -> None:
    out = HERE / f"v{SCHEMA_VERSION[0]}_{SCHEMA_VERSION[1]}"
    out.mkdir(exist_ok=True)
    net = golden_network()
    x0 = [0.3, 0.6]
    prop = robust_prop(net, x0, 0.02)
    crown = verified_cert(net, prop, "crown")
    if crown.verdict is not Verdict.VERIFIED:
        raise SystemExit("golden crown certificate is not VERIFIED")
    certs = {
        "bound": replace(crown, provenance=replace(PROV, method="crown")),
        "milp": replace(
            milp_cert(net, prop),
            provenance=replace(PROV, method="milp", solvers={"highs": "1.7.0"}),
        ),
        "bab": replace(bab_cert(net, prop), provenance=replace(PROV, method="bab")),
    }
    big = robust_prop(net, x0, 1.5)
    fals = verified_cert(net, big, "crown")
    if fals.verdict is not Verdict.FALSIFIED:
        raise SystemExit("golden counterexample certificate is not FALSIFIED")
    certs["counterexample"] = replace(fals, provenance=replace(PROV, method="sample"))
    certs["none"] = replace(
        crown,
        verdict=Verdict.UNKNOWN,
        evidence=NoEvidence("timeout", (-math.inf,) * len(prop.cases), (None,) * len(prop.cases)),
        provenance=replace(PROV, method="auto"),
    )
    tr = transfer(certs["bound"], net, golden_pruned(), verify_fallback=False)
    if not (tr.transferred and tr.verdict is Verdict.VERIFIED):
        raise SystemExit(f"golden transfer failed: {tr.reason}")
    certs["transfer"] = replace(tr.certificate, provenance=replace(PROV, method="transfer"))
    for kind, cert in certs.items():
        save_certificate(cert, out / f"{kind}.json")
        print("wrote", out / f"{kind}.json")


if __name__ == "__main__":
    main()
