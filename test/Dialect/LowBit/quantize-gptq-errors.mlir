// Errors of lowbit-quantize's gptq method, each naming what is wrong.
// RUN: rm -rf %t && mkdir -p %t
// RUN: not lowbit-opt %s --lowbit-quantize="method=gptq" 2>&1 | FileCheck %s --check-prefix=NO-STATE
// NO-STATE: error: method=gptq needs a calibration state with Hessians (state=FILE, written by lowbit-calibrate with hessians=true)
// RUN: not lowbit-opt %s --lowbit-quantize="method=gptq state=%t/missing.gguf" 2>&1 | FileCheck %s --check-prefix=MISSING
// MISSING: error: {{.*}}missing.gguf{{.*}}No such file or directory
// RUN: not lowbit-opt %s --lowbit-quantize="method=foo" 2>&1 | FileCheck %s --check-prefix=METHOD
// METHOD: error: unknown quantization method 'foo' (expected rtn or gptq)

// A Hessian computed for another shape.
// RUN: lowbit-test-state %t/small.gguf w:32
// RUN: not lowbit-opt %s --lowbit-quantize="method=gptq state=%t/small.gguf" 2>&1 | FileCheck %s --check-prefix=SIZE
// SIZE: error: the Hessian of 'w' is 32 x 32 but its rows have 64 columns; was the state computed for another model?

// A GGUF without Hessians (here a model).
// RUN: lowbit-gguf make-fixture tiny-llama -o %t/tiny.gguf
// RUN: not lowbit-opt %s --lowbit-quantize="method=gptq state=%t/tiny.gguf" 2>&1 | FileCheck %s --check-prefix=NO-HESSIANS
// NO-HESSIANS: error: {{.*}}tiny.gguf: no Hessians (lowbit.hessian.tokens missing; calibrate with Hessians enabled)

// A non-finite Hessian.
// RUN: lowbit-test-state %t/nan.gguf w:64:nan
// RUN: not lowbit-opt %s --lowbit-quantize="method=gptq state=%t/nan.gguf" 2>&1 | FileCheck %s --check-prefix=NAN
// NAN: error: tensor 'w': {{.*}}nan.gguf: tensor 'w.hessian' holds a non-finite value at offset

// A state entry naming a tensor the file lacks: an error, not a silent
// fall-back to plain rounding.
// RUN: lowbit-test-state %t/dangling.gguf w:64:dangling
// RUN: not lowbit-opt %s --lowbit-quantize="method=gptq state=%t/dangling.gguf" 2>&1 | FileCheck %s --check-prefix=DANGLING
// DANGLING: error: tensor 'w': {{.*}}dangling.gguf: lowbit.hessian.of.w names tensor 'w.missing', which the file does not hold

lowbit.global_weight @w : !lowbit.qtensor<2x64 : f32> = dense_resource<w> : tensor<512xi8> {lowbit.target = #lowbit.format<q4_0>}
{-#
  dialect_resources: {
    builtin: {
      w: "0x040000000681953DDE710ABD3D2CD43DF4FDD4BD34A2B4BD9A9999BDA91350BDED0D3EBCAA82D13DBBB80DBD1B0D603D05A392BC8FC2F53BF2414FBDF931E63D6C09F9BA23DBF9BCD49AE63DBC74133C55C1A83CFAEDEBBB795828BD053491BD728A0EBC0AD7A33DC364AA3C04E70CBC3D0A573D363C3DBD03788B3D17B751BA795828BD27A0093D60E5D03C96438BBC9FAB2D3CF0A7463D728A8E3D569F2BBD5D6D05BECEAACF3DF4FD54BC0C93A9BC567DAE3C9FABADBC865A533D24B97CBD787A25BC6DC57EBDBE9F9A3D82E247BC89D25E3D96B28C3DB37B72BDEA9532BC4ED1113D0AD7233BAC8BDBBB9FCD2A3DA323393D8E06F0BCAC8BDBBB4A7B033D31082C3C4260E53BF85363BD0E2DB23D11C73ABC3EE8593C89D2DEBA17B7513B8FC2F53B0C9329BDBE30993C211F743D5305A33CE10B133DA69BC43C17B7D13AEC51B83DDE710ABD9A779C3C60E5503D68916D3CABCF55BD645D5CBD52B89E3D5C8F42BD17B7D1391B2FDD3C99BB963BC66DB4BD80B7C0BDC364AABB52491DBDF4FD54BCBC74933BDDB5043C4BC887BD9FCDAABD80483F3D2497FFBC20636EBDF1F4CABD3EE8D93C000080BD189554BDB6F3FD3C6C09793C8A8EE43CB7D180BD17B711BE39B448BD211F74BC27C206BD0F0B353D05A3923C189554BDF931E63CB37BF2BB5D6DC5BC8A8E643DE7FBA9BDF31F523DD2005E3D3C4ED1BDE3A51BBCDDB504BC"
    }
  }
#-}
