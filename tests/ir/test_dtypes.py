import numpy as np
import onnx
import pytest

from placer.ir.dtypes import DType


@pytest.mark.parametrize("dtype,numel,expected", [
    (DType.BFLOAT16, 10, 20),
    (DType.FLOAT32, 3, 12),
    (DType.FP8_E4M3, 7, 7),
    (DType.INT4, 7, 4),          # packed two per byte, rounded up
    (DType.FP4_E2M1, 64, 32),
    (DType.MXFP4, 64, 32 + 2),   # 2 blocks of 32, one 8-bit E8M0 scale each
    (DType.MXFP4, 33, 17 + 2),
    (DType.MXFP8, 32, 32 + 1),
    (DType.BOOL, 5, 5),
])
def test_storage_bytes_exact(dtype, numel, expected):
    assert dtype.storage_bytes(numel) == expected


@pytest.mark.parametrize("onnx_type,dtype", [
    (onnx.TensorProto.FLOAT, DType.FLOAT32), (onnx.TensorProto.FLOAT16, DType.FLOAT16),
    (onnx.TensorProto.BFLOAT16, DType.BFLOAT16), (onnx.TensorProto.FLOAT8E4M3FN, DType.FP8_E4M3),
    (onnx.TensorProto.INT4, DType.INT4), (onnx.TensorProto.FLOAT4E2M1, DType.FP4_E2M1),
    (onnx.TensorProto.INT64, DType.INT64),
])
def test_bits_agree_with_onnx(onnx_type, dtype):
    # onnx's own table of element sizes is the oracle for the non-block formats.
    np_dtype = onnx.helper.tensor_dtype_to_np_dtype(onnx_type)
    bits = 4 if dtype in (DType.INT4, DType.FP4_E2M1) else np.dtype(np_dtype).itemsize * 8
    assert dtype.bits == bits


def test_parse_aliases_and_errors():
    assert DType.parse("fp8") is DType.FP8_E4M3
    assert DType.parse("BF16") is DType.BFLOAT16
    assert DType.parse("mxfp4") is DType.MXFP4
    with pytest.raises(ValueError, match="unknown dtype 'fp7'"):
        DType.parse("fp7")
