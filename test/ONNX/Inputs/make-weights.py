"""make-weights.py FILE SCALE:COUNT...: writes COUNT f32 weights (little
endian) of standard deviation SCALE for each pair, one after another, from a
fixed generator, so every run and machine sees the same weights. The
fixtures' external data: mlp.txtpb (0.06:131072 0.04:131072 0.1:256),
embed.txtpb (0.5:16384 0.05:32768)."""
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


with open(sys.argv[1], "wb") as out:
    for spec in sys.argv[2:]:
        scale, count = spec.split(":")
        out.write(struct.pack("<%df" % int(count),
                              *(normal(float(scale)) for _ in range(int(count)))))
