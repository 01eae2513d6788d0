import pickle

import pytest

import netkit
from netkit import errors


def test_every_error_is_rooted_at_netkit_error():
    for name in errors.__all__:
        cls = getattr(netkit, name)
        if name == "CancelledError":
            assert issubclass(cls, BaseException) and not issubclass(cls, Exception)
        else:
            assert issubclass(cls, netkit.NetkitError), name


def test_limit_error_names_limit_side_and_values():
    exc = netkit.MessageTooBig(2097152, 1048576)
    assert str(exc) == "message of 2097152 bytes exceeds max_message_size=1048576 (local)"
    assert exc.close_code == 1009
    assert (exc.limit, exc.value, exc.maximum, exc.side) == ("max_message_size", 2097152, 1048576, "local")


def test_frame_too_large_is_a_protocol_error_with_1009():
    exc = netkit.FrameTooLarge(5, 4)
    assert isinstance(exc, netkit.ProtocolError)
    assert exc.close_code == 1009
    assert "max_frame_size=4" in str(exc)


def test_protocol_error_carries_overridable_remedy():
    assert netkit.ProtocolError("x").close_code == 1002
    exc = netkit.ProtocolError("bad utf-8", close_code=1007)
    assert exc.close_code == 1007 and exc.status == 400
    assert netkit.HTTPError("too long", status=414).status == 414


def test_incomplete_read_error_pickles():
    exc = netkit.IncompleteReadError(b"ab", 4)
    again = pickle.loads(pickle.dumps(exc))
    assert again.partial == b"ab" and again.expected == 4
    assert isinstance(exc, EOFError)


@pytest.mark.parametrize("cls,code", [(netkit.ConnectionClosedOK, 1000), (netkit.ConnectionClosedError, 1006)])
def test_connection_closed_keeps_code_and_reason(cls, code):
    exc = cls(code, "bye")
    assert isinstance(exc, netkit.ConnectionClosed)
    assert (exc.code, exc.reason) == (code, "bye")
