"""Start ``fhirnet serve`` for the SMART Bulk Data test suite (bdt): a data dir holding the
multicenter trial scenario (as tests/integration/test_bulk_export.py plays it), one ES384 bulk
client registered with bdt's example key by JWKS URL (served here on the loopback interface, so
bdt's "Authorization using JWKS URL" test runs too), and a ``config.js`` for bdt next to it.

    .venv/bin/python -m tools.bdt.serve /tmp/bdt-run 8123   # then run bdt (README.md)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.test_bulk_export import played_data_dir
from tests.jwks_server import JwksServer

# bdt's example ES384 key (config-examples/reference-local-r4.js): public, for testing only.
PRIVATE_JWK = {
    "kty": "EC",
    "crv": "P-384",
    "d": "tb7pcRThbZ8gHMFLZXJLMG48U0euuiPqSHBsOYPR2Bqsdq9rEq4Pi6LiOo890Qm8",
    "x": "3K1Lw7Qkjj5LWSk5NnIwWmkb5Yo2GkcwVtnM8xhhGdM0bI3B632QMZmqtRHQ5APJ",
    "y": "CBqiq5QwE8EyUxw2_oDJzVHrY5j22ny9KbRCK5vABppaGO4x8MxnTWfQMtGIbVQN",
    "kid": "b37fcf0b5801fde3af48bd55fd95117e",
    "alg": "ES384",
}
PUBLIC_JWK = {k: v for k, v in PRIVATE_JWK.items() if k != "d"} | {"use": "sig"}
CLIENT_ID = "bdt"


def serve_jwks() -> str:
    """The public JWK Set on a loopback port (served until the process ends); its URL."""
    return JwksServer([PUBLIC_JWK]).start().url


def config(base: str, group: str, jwks_url: str) -> str:
    """bdt's config (a CommonJS module)."""
    settings = {
        "baseURL": f"{base}/fhir",
        "systemExportEndpoint": "$export",
        "patientExportEndpoint": "Patient/$export",
        "groupExportEndpoint": f"Group/{group}/$export",
        # A Patient-compartment type, exported at every level (Group is not, at patient level).
        "fastestResource": "DiagnosticReport",
        # Else bdt takes the CapabilityStatement's first types (Questionnaire: served, not
        # exported) for "Accepts multiple _type parameters".
        "supportedResourceTypes": ["DiagnosticReport", "QuestionnaireResponse"],
        "authentication": {
            "type": "backend-services",
            "optional": False,
            "tokenEndpoint": f"{base}/auth/token",
            "clientId": CLIENT_ID,
            "privateKey": PRIVATE_JWK,
            "jwksUrl": jwks_url,
            "scope": "system/*.read",
            "tokenSignAlgorithm": "ES384",
        },
        "requests": {"strictSSL": False, "timeout": 30000},
    }
    return f"module.exports = {json.dumps(settings, indent=2)};\n"


def main(directory: Path, port: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    group = played_data_dir(directory / "data")
    jwks_url = serve_jwks()
    clients = directory / "bulk-clients.json"
    clients.write_text(
        json.dumps([{"client_id": CLIENT_ID, "jwks_url": jwks_url, "scope": "system/*.rs"}])
    )
    base = f"http://127.0.0.1:{port}"
    (directory / "config.js").write_text(config(base, group, jwks_url))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIRNET_")}
    env |= {
        "FHIRNET_PORT": str(port),
        "FHIRNET_DATA_DIR": str(directory / "data"),
        "FHIRNET_BULK_CLIENTS_FILE": str(clients),
    }
    sys.stderr.write(f"config: {directory / 'config.js'}\n")
    subprocess.run([sys.executable, "-m", "fhirnet.web.cli", "serve"], env=env, check=False)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
