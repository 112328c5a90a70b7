"""Read what an offline W&B run recorded, from its ``run-*.wandb`` transaction log.

The file is a 7-byte header (":W&B", magic, version) followed by a LevelDB-style log: 32 KiB
blocks of records (crc32 4 bytes, length 2 bytes LE, type 1 byte: 1 full, 2 first, 3 middle,
4 last) whose payloads are ``wandb_internal_pb2.Record`` protobufs.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32768
HEADER = 7


def _payloads(data: bytes):
    offset, pending = HEADER, b""
    while offset + 7 <= len(data):
        left_in_block = BLOCK - offset % BLOCK
        if left_in_block < 7:
            offset += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[offset : offset + 7])
        chunk = data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind == 0 and length == 0:
            continue
        if kind == 1:
            yield chunk
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            yield pending + chunk
            pending = b""


def read_offline_run(run_dir: Path) -> tuple[dict[str, list], dict[str, object]]:
    """(history: key -> values in order, config: key -> value) of an offline run directory."""
    from wandb.proto import wandb_internal_pb2

    log_file = next(Path(run_dir).glob("run-*.wandb"))
    history: dict[str, list] = {}
    config: dict[str, object] = {}
    for payload in _payloads(log_file.read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                history.setdefault(key, []).append(json.loads(item.value_json))
        elif kind in ("config", "run"):
            updates = record.config.update if kind == "config" else record.run.config.update
            for item in updates:
                config[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return history, config
