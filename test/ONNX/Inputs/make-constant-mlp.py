"""Prints (protobuf text, for protoc --encode) an MLP whose weights are
Constant nodes, as many exports write them (PaddlePaddle's, for one): X
[n, 64] -> MatMul W1 [64, 96] (raw_data) -> Relu -> MatMul W2 [96, 32]
(float_data)."""
import math
import struct

state = 777


def value():
    global state
    state = (state * 1103515245 + 12345) % 2**31
    return 0.1 * math.sin(state / 2**31 * 6.28) * (1 + state % 5)


def raw(count):
    data = struct.pack("<%df" % count, *(value() for _ in range(count)))
    return "".join("\\%03o" % b for b in data)


w2 = " ".join("float_data: %.6g" % value() for _ in range(96 * 32))
print(f'''ir_version: 8
opset_import {{ domain: "" version: 17 }}
graph {{
  name: "constant-mlp"
  node {{ output: "W1" name: "w1" op_type: "Constant"
    attribute {{ name: "value" type: TENSOR t {{ dims: 64 dims: 96 data_type: 1 raw_data: "{raw(64 * 96)}" }} }} }}
  node {{ output: "W2" name: "w2" op_type: "Constant"
    attribute {{ name: "value" type: TENSOR t {{ dims: 96 dims: 32 data_type: 1 {w2} }} }} }}
  node {{ input: "X" input: "W1" output: "H" name: "fc1" op_type: "MatMul" }}
  node {{ input: "H" output: "A" name: "act" op_type: "Relu" }}
  node {{ input: "A" input: "W2" output: "Y" name: "fc2" op_type: "MatMul" }}
  input {{ name: "X" type {{ tensor_type {{ elem_type: 1 shape {{ dim {{ dim_param: "n" }} dim {{ dim_value: 64 }} }} }} }} }}
  output {{ name: "Y" type {{ tensor_type {{ elem_type: 1 shape {{ dim {{ dim_param: "n" }} dim {{ dim_value: 32 }} }} }} }} }}
}}''')
