#!/usr/bin/env python3
"""Checks a Liandong case bundle (format liandong.casefile.bundle/2) with nothing but Python 3.

This file travels inside every bundle as verify_bundle.py and is also what
`liandong casefile verify --bundle` runs, so both give the same answer. Standard library only.

A bundle is a folder (in a tar archive) holding:
  manifest.json   case id, head of the case's audit chain, evidence items and their files
  case.json       the case document exactly as stored
  record.json     what is served beside it (task, alerts, team, summary, opened by)
  audit.jsonl     the case's audit entries, one JSON object per line, oldest first
  evidence/       every evidence file the case cites, named <sha256>.<ext>
  README.txt      how to check the bundle by hand
  verify_bundle.py  this script
  SHA256SUMS      sha256sum lines for every file above
  SHA256SUMS.sig  Ed25519 signature of SHA256SUMS by the exporting casefile's bundle key

What is checked: every file is listed in SHA256SUMS with its hash (altered, missing and extra
files are named); the audit chain links and hashes; case.json hashes to the case_sha256 the
last vouching entry of the chain recorded, and record.json to its record_sha256; every
evidence item the chain recorded
(AddEvidence) has a file with exactly that hash; the manifest agrees. With `--key PUB.pem`,
the signature too (by calling `openssl pkeyutl`): without it, whoever edits a bundle can
recompute every hash, so a bundle is only as good as its signature against the agency's key.

    python3 verify_bundle.py [--key casefile-bundle.pub] [FOLDER]
exit 0 verified, 1 a problem found (each printed), 2 usage, 3 unreadable input.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

FORMAT = "liandong.casefile.bundle/2"
GENESIS = "0" * 64
SUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.sig"
CONTROL = ("manifest.json", "case.json", "audit.jsonl")
RECORD = "record.json"
ENTRY_FIELDS = (
    "seq",
    "case_id",
    "case_seq",
    "kind",
    "payload_json",
    "actor",
    "at",
    "prev_hash",
    "case_prev_hash",
    "hash",
)


def entry_hash(e: dict[str, Any]) -> str:
    """The audit entry's hash: SHA-256 of the canonical JSON of every field but `hash` (keys
    sorted, no whitespace, non-ASCII as is), the payload embedded as stored."""
    enc = encode_basestring
    text = (
        f'{{"actor":{enc(e["actor"])},"at":{enc(e["at"])},"case_id":{enc(e["case_id"])},'
        f'"case_prev_hash":{enc(e["case_prev_hash"])},"case_seq":{int(e["case_seq"])},'
        f'"kind":{enc(e["kind"])},"payload":{e["payload_json"]},'
        f'"prev_hash":{enc(e["prev_hash"])},"seq":{int(e["seq"])}}}'
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_sums(text: str) -> tuple[dict[str, str], list[str]]:
    """`sha256sum` lines (`<hex>  <path>` or `<hex> *<path>`) -> {path: hex}, problems."""
    listed: dict[str, str] = {}
    problems: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, _, path = line.partition(" ")
        path = path[1:] if path[:1] in (" ", "*") else path
        if len(digest) != 64 or not path:
            problems.append(f"{SUMS} line {n} is malformed")
            continue
        listed[path] = digest.lower()
    return listed, problems


def check_files(hashes: dict[str, str], sums_text: str) -> list[str]:
    """Every file against SHA256SUMS: `hashes` maps each file of the bundle (relative path,
    SHA256SUMS and its signature excluded) to the SHA-256 of its bytes."""
    listed, problems = parse_sums(sums_text)
    for path, digest in sorted(listed.items()):
        if path not in hashes:
            problems.append(f"missing file: {path} (listed in {SUMS})")
        elif hashes[path] != digest:
            problems.append(
                f"altered file: {path} ({SUMS} has {digest[:16]}..., "
                f"it hashes to {hashes[path][:16]}...)"
            )
    for path in sorted(set(hashes) - set(listed)):
        problems.append(f"extra file: {path} (not in {SUMS})")
    return problems


def check_contents(
    hashes: dict[str, str], texts: dict[str, bytes], notes: list[str] | None = None
) -> list[str]:
    """The chain, the case document and the evidence files against each other. `notes`
    receives what is not a failure: items the verified case document records by hash only
    (their bytes were never uploaded to casefile, so no bundle can hold them)."""
    problems: list[str] = []
    for name in CONTROL:
        if name not in texts:
            problems.append(f"missing file: {name}")
    if problems:
        return problems
    try:
        manifest = json.loads(texts["manifest.json"])
        entries = [
            json.loads(line)
            for line in texts["audit.jsonl"].decode("utf-8").splitlines()
            if line.strip()
        ]
    except (ValueError, UnicodeDecodeError) as err:
        return [f"manifest.json or audit.jsonl is not JSON: {err}"]
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return [f"manifest.json: not a {FORMAT} manifest"]
    case_id = manifest.get("case_id")
    # the chain of the case: links, hashes, order
    prev = GENESIS
    last_seq = 0
    case_sha = None
    record_sha = None
    recorded: dict[str, str] = {}
    for i, e in enumerate(entries, 1):
        if not isinstance(e, dict) or any(f not in e for f in ENTRY_FIELDS):
            problems.append(f"audit.jsonl line {i}: malformed entry")
            return problems
        where = f"audit.jsonl line {i} (case_seq {e['case_seq']})"
        if e["case_id"] != case_id:
            problems.append(f"{where}: entry of another case {e['case_id']!r}")
        if e["case_seq"] != i:
            problems.append(f"{where}: expected case_seq {i} (entry deleted, inserted or moved)")
        if e["case_prev_hash"] != prev:
            problems.append(f"{where}: case_prev_hash does not link to the entry before")
        try:
            actual = entry_hash(e)
            payload = json.loads(e["payload_json"])
        except (ValueError, TypeError, KeyError) as err:
            problems.append(f"{where}: unreadable ({err})")
            return problems
        if actual != e["hash"]:
            problems.append(f"{where}: entry edited (does not match its hash)")
        if e["seq"] <= last_seq:
            problems.append(f"{where}: global seq {e['seq']} not after {last_seq}")
        prev, last_seq = e["hash"], e["seq"]
        if isinstance(payload, dict):
            if payload.get("case_sha256"):
                case_sha = payload["case_sha256"]
            if payload.get("record_sha256"):
                record_sha = payload["record_sha256"]
            command = payload.get("command")
            if e["kind"] == "AddEvidence" and isinstance(command, dict):
                recorded[str(command.get("evidence_id"))] = str(command.get("sha256"))
    if problems:
        return problems
    head = manifest.get("head") or {}
    if entries and (
        head.get("case_seq") != entries[-1]["case_seq"] or head.get("hash") != entries[-1]["hash"]
    ):
        problems.append(
            "manifest.json: head differs from the last entry of audit.jsonl (entries cut or added)"
        )
    # the case document the chain vouches for
    doc_sha = hashlib.sha256(texts["case.json"]).hexdigest()
    if case_sha is None:
        problems.append("case.json: no audit entry vouches for a case document")
    elif doc_sha != case_sha:
        problems.append(
            f"altered file: case.json (hashes to {doc_sha[:16]}..., "
            f"the audit chain recorded {case_sha[:16]}...)"
        )
    # the record served beside the document (entries before record_sha256 existed: none)
    if record_sha is not None:
        if RECORD not in texts:
            problems.append(f"missing file: {RECORD} (the audit chain vouches for one)")
        elif hashlib.sha256(texts[RECORD]).hexdigest() != record_sha:
            problems.append(
                f"altered file: {RECORD} (does not hash to the record_sha256 the audit chain "
                f"recorded, {record_sha[:16]}...)"
            )
    # items the (verified) document says casefile never held the bytes of
    by_hash_only: set[str] = set()
    if case_sha is not None and doc_sha == case_sha:
        try:
            doc = json.loads(texts["case.json"])
            by_hash_only = {
                str(e.get("evidence_id"))
                for e in doc.get("evidence") or []
                if isinstance(e, dict) and not e.get("content")
            }
        except ValueError:
            problems.append("case.json: not JSON")
    # every evidence item the chain recorded, with a file of exactly that hash
    listed = {
        str(item.get("evidence_id")): item
        for item in manifest.get("evidence", [])
        if isinstance(item, dict)
    }
    for evidence_id, sha in sorted(recorded.items()):
        item = listed.get(evidence_id)
        if item is None:
            problems.append(
                f"evidence {evidence_id}: recorded in the chain, absent from manifest.json"
            )
            continue
        path = str(item.get("path", ""))
        if item.get("sha256") != sha:
            problems.append(
                f"evidence {evidence_id}: manifest.json sha256 differs from the chain's "
                f"{sha[:16]}..."
            )
        elif path not in hashes and evidence_id in by_hash_only:
            if notes is not None:
                notes.append(
                    f"evidence {evidence_id}: recorded by hash only ({sha[:16]}...); its "
                    "bytes were never uploaded to casefile"
                )
        elif path not in hashes:
            problems.append(
                f"missing file: {path or '(none)'} (evidence {evidence_id}, sha256 {sha[:16]}...)"
            )
        elif hashes[path] != sha:
            problems.append(
                f"altered file: {path} (evidence {evidence_id}: hashes to "
                f"{hashes[path][:16]}..., the chain recorded {sha[:16]}...)"
            )
    for evidence_id in sorted(set(listed) - set(recorded)):
        problems.append(f"evidence {evidence_id}: in manifest.json but never recorded in the chain")
    return problems


def verify_signature(sums: bytes, signature: bytes, public_key_pem: str) -> str | None:
    """None when `signature` is the Ed25519 signature of `sums` under the key; else why not.
    Uses the `cryptography` package when present, else `openssl pkeyutl` (OpenSSL 3)."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        key = load_pem_public_key(public_key_pem.encode("ascii"))
        if not isinstance(key, Ed25519PublicKey):
            return "the public key is not an Ed25519 key"
        try:
            key.verify(signature, sums)
        except InvalidSignature:
            return f"{SIGNATURE}: signature does not verify under the given key"
        return None
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, data in (
            ("k.pem", public_key_pem.encode("ascii")),
            ("s", sums),
            ("sig", signature),
        ):
            paths[name] = os.path.join(tmp, name)
            with open(paths[name], "wb") as f:
                f.write(data)
        run = subprocess.run(
            [
                "openssl",
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                paths["k.pem"],
                "-rawin",
                "-in",
                paths["s"],
                "-sigfile",
                paths["sig"],
            ],
            capture_output=True,
            check=False,
        )
        return (
            None
            if run.returncode == 0
            else f"{SIGNATURE}: signature does not verify under the given key"
        )


def _folder(root: str) -> tuple[dict[str, str], dict[str, bytes]]:
    hashes: dict[str, str] = {}
    texts: dict[str, bytes] = {}
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(base, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            digest = hashlib.sha256()
            with open(full, "rb") as f:
                data = b""
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
                    if rel in (*CONTROL, RECORD, SUMS, SIGNATURE):
                        data += chunk
            if rel in (*CONTROL, RECORD, SUMS, SIGNATURE):
                texts[rel] = data
            if rel not in (SUMS, SIGNATURE):
                hashes[rel] = digest.hexdigest()
    return hashes, texts


def check(
    hashes: dict[str, str],
    texts: dict[str, bytes],
    public_key_pem: str | None,
    notes: list[str] | None = None,
) -> list[str]:
    """Everything: files against SHA256SUMS, the signature (when a key is given), the chain."""
    if SUMS not in texts:
        return [f"missing file: {SUMS}"]
    problems = check_files(hashes, texts[SUMS].decode("utf-8", "replace"))
    if public_key_pem is not None:
        if SIGNATURE not in texts:
            problems.append(f"missing file: {SIGNATURE}")
        else:
            why = verify_signature(texts[SUMS], texts[SIGNATURE], public_key_pem)
            if why:
                problems.append(why)
    problems.extend(check_contents(hashes, texts, notes))
    return problems


def main(argv: list[str]) -> int:
    key_path = None
    args = list(argv)
    if "--key" in args:
        i = args.index("--key")
        if i + 1 >= len(args):
            print("usage: verify_bundle.py [--key PUB.pem] [FOLDER]", file=sys.stderr)
            return 2
        key_path = args[i + 1]
        del args[i : i + 2]
    if len(args) > 1 or any(a.startswith("-") for a in args):
        print("usage: verify_bundle.py [--key PUB.pem] [FOLDER]", file=sys.stderr)
        return 2
    root = args[0] if args else os.path.dirname(os.path.abspath(__file__))
    try:
        hashes, texts = _folder(root)
        key = None
        if key_path:
            with open(key_path, encoding="ascii") as f:
                key = f.read()
    except OSError as err:
        print(f"cannot read: {err}", file=sys.stderr)
        return 3
    notes: list[str] = []
    problems = check(hashes, texts, key, notes)
    for n in notes:
        print(f"note: {n}")
    for p in problems:
        print(f"FAILED: {p}")
    if problems:
        return 1
    signed = "signature verified" if key else "signature NOT checked (no --key)"
    print(
        f"OK: {len(hashes)} files match SHA256SUMS, audit chain and case document "
        f"verified; {signed}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
