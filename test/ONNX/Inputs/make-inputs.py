"""make-inputs.py FOLDER SETS DIM...: writes FOLDER/test_data_set_K/input_0.pb
(K < SETS), each an f32 TensorProto of shape DIM... with values from a fixed
generator: calibration data in ONNX's test-data layout. The TensorProto is
encoded by hand (dims = 1, data_type = 2, raw_data = 9)."""
import math
import os
import struct
import sys


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


folder, sets, dims = sys.argv[1], int(sys.argv[2]), [int(d) for d in sys.argv[3:]]
count = math.prod(dims)
state = 4242
for k in range(sets):
    values = []
    for _ in range(count):
        state = (state * 1103515245 + 12345) % 2**31
        values.append(math.sin(state / 2**31 * 6.28) * (1.5 if state % 7 == 0 else 0.5))
    raw = struct.pack("<%df" % count, *values)
    proto = b"".join(b"\x08" + varint(d) for d in dims)
    proto += b"\x10\x01" + b"\x4a" + varint(len(raw)) + raw
    path = os.path.join(folder, "test_data_set_%d" % k)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "input_0.pb"), "wb") as out:
        out.write(proto)
