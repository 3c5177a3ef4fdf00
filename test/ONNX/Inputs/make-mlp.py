"""Writes mlp.onnx.data for mlp.txtpb: W1 [256, 512] (MatMul), W2 [256, 512]
(Gemm with transB = 1) and b2 [256], f32 little-endian, from a fixed
generator, so every run and machine sees the same weights."""
import math
import struct
import sys

state = 12345


def uniform():
    global state
    state = (state * 1103515245 + 12345) % 2**31
    return state / 2**31


def normal(scale):
    # Box-Muller; a few outliers like real weights have.
    u1, u2 = max(uniform(), 1e-12), uniform()
    return scale * math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)


with open(sys.argv[1] + "/mlp.onnx.data", "wb") as out:
    for count, scale in ((256 * 512, 0.06), (256 * 512, 0.04), (256, 0.1)):
        out.write(struct.pack("<%df" % count, *(normal(scale) for _ in range(count))))
