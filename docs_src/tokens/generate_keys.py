"""Write an RSA key pair for RS256: ``private.pem`` signs, ``public.pem`` verifies.

Run once: ``write_key_pair(Path("keys"))``, or this file (``keys`` by default).
Keep ``private.pem`` out of version control and out of production settings.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def write_key_pair(directory: Path) -> None:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "private.pem").write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (directory / "public.pem").write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


if __name__ == "__main__":
    write_key_pair(Path(sys.argv[1] if len(sys.argv) > 1 else "keys"))
