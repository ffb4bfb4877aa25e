"""The Python error hierarchy and its mapping from the core's error codes."""

import pytest

import nef


def test_hierarchy():
    for cls in (nef.NEFGraphCycleError, nef.NEFValidationError, nef.NEFShapeError,
                nef.NEFTypeError, nef.NEFUnsupportedError, nef.NEFFormatError,
                nef.NEFOutOfMemoryError, nef.NEFDeviceError, nef.NEFCompileError):
        assert issubclass(cls, nef.NEFError)
    assert issubclass(nef.NEFError, Exception)
    assert issubclass(nef.NEFShapeError, ValueError)
    assert issubclass(nef.NEFTypeError, TypeError)


def test_shape_error_names_op_and_shapes():
    with pytest.raises(ValueError) as e:
        nef.matmul(nef.zeros((2, 3)), nef.zeros((4, 5)))
    assert isinstance(e.value, nef.NEFShapeError)
    msg = str(e.value)
    assert "[matmul]" in msg and "(2, 3)" in msg and "(4, 5)" in msg
    with pytest.raises(nef.NEFShapeError, match=r"\[add\]"):
        nef.zeros((2, 3)) + nef.zeros((4,))


def test_type_error_is_type_error():
    with pytest.raises(TypeError) as e:
        nef.neg(nef.tensor([True, False]))
    assert isinstance(e.value, nef.NEFTypeError)
    with pytest.raises(nef.NEFTypeError):
        nef.sub(nef.tensor([True]), nef.tensor([False]))
    with pytest.raises(nef.NEFTypeError):
        nef.zeros((2,), dtype="complex64")


def test_validation_error_on_bad_attribute():
    with pytest.raises(nef.NEFValidationError):
        nef.gelu(nef.zeros((2,)), approximate="nope")
    with pytest.raises(nef.NEFError):
        nef._nef.op("no_such_op", [], {})
    with pytest.raises(nef.NEFError):
        nef._nef.op("add", [nef.zeros(2)._t, nef.zeros(2)._t], {"bogus": 1})


def test_unsupported_operand_types():
    with pytest.raises(TypeError):
        nef.zeros(2) + "a"
    with pytest.raises(TypeError):
        nef.zeros(2) + object()


def test_devices_report_and_config_override():
    import nef
    rep = nef.devices()
    assert rep["cpu"]["logical_cores"] >= 1
    assert "cpu" in rep["enabled"]
    assert any(d["name"] == "cpu" for d in rep["devices"])
    with pytest.raises(nef.NEFDeviceError):
        nef.config(devices=["no-such-device"])
    nef.config(devices=["cpu"])
    assert nef.devices()["enabled"] == ["cpu"]
    nef.config(devices=[])
