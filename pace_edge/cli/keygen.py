"""``pace-edge keygen``: an Ed25519 key pair to sign exports with."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "make an Ed25519 key pair to sign exports (pace-edge export --sign)"


def register(sub: argparse._SubParsersAction) -> None:
    from ..integrity.signing import DEFAULT_KEY_NAME

    p = sub.add_parser("keygen", help=HELP, description=HELP + ". Writes NAME.key (the private "
                       "key, PKCS #8 PEM, readable by its owner only: keep it off the devices) "
                       "and NAME.pub.pem (the public key: copy it into each device's "
                       "--trusted-keys folder). Never overwrites a key.")
    p.add_argument("--out", required=True, type=Path, help="folder for the key pair "
                   "(created with mode 0700 if missing)")
    p.add_argument("--name", default=DEFAULT_KEY_NAME,
                   help=f"file name stem of the pair (default {DEFAULT_KEY_NAME})")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..integrity.signing import generate_key_pair, load_public_key

    private, public = generate_key_pair(args.out, args.name)
    key = load_public_key(public)
    print(f"private key {private} (mode 0600; sign with pace-edge export --sign {private})")
    print(f"public key  {public} (copy into the devices' --trusted-keys folder)")
    print(f"key sha256  {key.key_sha256}")
    return 0
