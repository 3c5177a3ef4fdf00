#!/usr/bin/env python3
"""Copies a GGUF file with metadata keys added or replaced (test fixtures).

usage: gguf_set_keys.py IN OUT EDIT...
  KEY=TYPE:VALUE     add or replace a key (TYPE: str, u32, f32)
  rename:OLD=NEW     rename the keys starting with OLD to start with NEW
  tensor:NAME=N[:V]  add a 1-D F32 tensor of N values V (default 1)

The tensor data is copied unchanged; only the header grows, and the data
section moves to the next multiple of general.alignment (default 32).
"""
import struct
import sys

SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def read_string(b, at):
    (n,) = struct.unpack_from("<Q", b, at)
    return b[at + 8:at + 8 + n].decode(), at + 8 + n


def skip_value(b, at, t):
    if t in SIZES:
        return at + SIZES[t]
    if t == 8:
        return read_string(b, at)[1]
    if t == 9:
        et, n = struct.unpack_from("<IQ", b, at)
        at += 12
        for _ in range(n):
            at = skip_value(b, at, et)
        return at
    raise SystemExit(f"unknown GGUF value type {t}")


def encode(key, spec):
    kind, value = spec.split(":", 1)
    name = key.encode()
    out = struct.pack("<Q", len(name)) + name
    if kind == "str":
        v = value.encode()
        return out + struct.pack("<IQ", 8, len(v)) + v
    if kind == "u32":
        return out + struct.pack("<II", 4, int(value))
    if kind == "f32":
        return out + struct.pack("<If", 6, float(value))
    raise SystemExit(f"unsupported type {kind}")


def main():
    src, dst, *edits = sys.argv[1:]
    b = open(src, "rb").read()
    magic, version, n_tensors, n_kv = struct.unpack_from("<4sIQQ", b, 0)
    assert magic == b"GGUF", "not a GGUF file"
    at = 24
    kvs = []
    alignment = 32
    for _ in range(n_kv):
        start = at
        key, at = read_string(b, at)
        (t,) = struct.unpack_from("<I", b, at)
        at += 4
        if key == "general.alignment":
            (alignment,) = struct.unpack_from("<I", b, at)
        at = skip_value(b, at, t)
        kvs.append((key, b[start:at]))
    infos_start = at
    for _ in range(n_tensors):
        _, at = read_string(b, at)
        (n_dims,) = struct.unpack_from("<I", b, at)
        at += 4 + 8 * n_dims + 4 + 8
    infos = b[infos_start:at]
    data = b[(at + alignment - 1) // alignment * alignment:]

    added = b""
    for edit in [e for e in edits if e.startswith("tensor:")]:
        name, spec = edit[len("tensor:"):].split("=", 1)
        count, _, value = spec.partition(":")
        count, value = int(count), float(value or 1)
        data += b"\0" * ((-len(data)) % alignment)
        raw = name.encode()
        added += struct.pack("<Q", len(raw)) + raw + struct.pack("<IQIQ", 1, count, 0, len(data))
        data += struct.pack(f"<{count}f", *([value] * count))
        n_tensors += 1
    infos += added
    edits = [e for e in edits if not e.startswith("tensor:")]
    new = dict((k, v) for k, v in kvs)
    order = [k for k, _ in kvs]
    for edit in edits:
        if edit.startswith("rename:"):
            old, new_prefix = edit[len("rename:"):].split("=", 1)
            for i, k in enumerate(order):
                if k.startswith(old):
                    renamed = new_prefix + k[len(old):]
                    raw = new.pop(k)
                    (n,) = struct.unpack_from("<Q", raw, 0)
                    name = renamed.encode()
                    new[renamed] = struct.pack("<Q", len(name)) + name + raw[8 + n:]
                    order[i] = renamed
            continue
        key, spec = edit.split("=", 1)
        if key not in new:
            order.append(key)
        new[key] = encode(key, spec)
    header = struct.pack("<4sIQQ", b"GGUF", version, n_tensors, len(order))
    header += b"".join(new[k] for k in order) + infos
    header += b"\0" * ((-len(header)) % alignment)
    open(dst, "wb").write(header + data)


main()
