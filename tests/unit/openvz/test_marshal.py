"""Ruby's Marshal format, as the converter's state file holds it (plugins/openvz/marshal.py)."""

from __future__ import annotations

import pytest

from openvz.marshal import MarshalError, RubyObject, Symbol, dumps, loads

# Written by Ruby 3.1 (Debian's ruby, Marshal.dump) from a state shaped like the converter's:
# {step: :sync, vz_ct: Vz6::Container (its config's items: ConfigItem objects, one IPAddress
# object referenced twice, a bignum, a float), target_ct: Container, opts: {...}, snapshots: [...]}
RUBY_STATE = bytes.fromhex(
    "04087b0a3a09737465703a0973796e633a0a767a5f63746f3a2a56707341646d696e4f533a3a436f6e7665727465723a"
    "3a567a363a3a436f6e7461696e6572083a0a4063746964492208313031063a0645543a0c40636f6e6669676f3a275670"
    "7341646d696e4f533a3a436f6e7665727465723a3a567a363a3a436f6e666967063a0b406974656d737b0b49220f4950"
    "5f41444452455353063b0a546f3a2b56707341646d696e4f533a3a436f6e7665727465723a3a567a363a3a436f6e6669"
    "674974656d083a09406b657949220f49505f41444452455353063b0a543a0b4076616c75655b076f3a14495041646472"
    "6573733a3a49507634083a0d406164647265737349220c312e322e332e34063b0a543a0c4070726566697869253a0c40"
    "6f63746574735b096906690769086909400e3a0e40636f6e73756d65644649220d484f53544e414d45063b0a546f3b0e"
    "083b0f49220d484f53544e414d45063b0a543b1049220a6374313031063b0a543b154649220b4f4e424f4f54063b0a54"
    "6f3b0e083b0f49220b4f4e424f4f54063b0a543b10543b154649220d435055554e495453063b0a546f3b0e083b0f4922"
    "0d435055554e495453063b0a543b106902e8033b1546492208424947063b0a546f3b0e083b0f492208424947063b0a54"
    "3b106c2b0a000000000000000040003b154649220646063b0a546f3b0e083b0f49220646063b0a543b106608312e353b"
    "15463a0c406c61796f75743a0a73696d66733a0e7461726765745f63746f3a2556707341646d696e4f533a3a436f6e76"
    "65727465723a3a436f6e7461696e65720d3a08406964492208313031063b0a543a0a4075736572303a0b4067726f7570"
    "303a0d4064617461736574303a0c40726f6f7466734922142f767a2f707269766174652f313031063b0a543a12406469"
    "73747269627574696f6e49220b64656269616e063b0a543a0d4076657273696f6e492208392e30063b0a543a0c406e65"
    "746966735b003a096f7074737b0b3a086473744922086f7331063b0a543a09706f7274691b3a087a6673463a107a6673"
    "5f64617461736574303a0f7a66735f737562646972303a187a66735f636f6d707265737365645f73656e64463a0e736e"
    "617073686f74735b07492226636f6e7665727465722d6d6967726174652d626173652d31373030303030303030063b0a"
    "54492226636f6e7665727465722d6d6967726174652d696e63722d31373030303030313030063b0a54")


def test_a_state_ruby_wrote_is_read():
    state = loads(RUBY_STATE)
    assert state["step"] == "sync" and isinstance(state["step"], Symbol)
    assert state["opts"] == {"dst": "os1", "port": 22, "zfs": False, "zfs_dataset": None, "zfs_subdir": None,
                             "zfs_compressed_send": False}
    assert state["snapshots"] == ["converter-migrate-base-1700000000", "converter-migrate-incr-1700000100"]
    vz_ct = state["vz_ct"]
    assert vz_ct.cls == "VpsAdminOS::Converter::Vz6::Container" and vz_ct.ivars["@ctid"] == "101"
    assert vz_ct.ivars["@layout"] == "simfs"
    items = vz_ct.ivars["@config"].ivars["@items"]
    assert items["BIG"].ivars["@value"] == 2**70 and items["F"].ivars["@value"] == 1.5
    assert items["ONBOOT"].ivars["@value"] is True and items["CPUUNITS"].ivars["@value"] == 1000
    first, second = items["IP_ADDRESS"].ivars["@value"]
    assert first is second, "an object link is the same object"
    assert first == RubyObject("IPAddress::IPv4", {"@address": "1.2.3.4", "@prefix": 32, "@octets": [1, 2, 3, 4]})
    assert state["target_ct"].ivars["@rootfs"] == "/vz/private/101"


# What dumps() writes, Ruby 3.1 loads back as
# {:step=>:stage, :vz_ct=>#<VzCt @ctid="101", @n=[...the same integers...], @cfg={"A"=>nil, "B"=>true}>, ...}
@pytest.mark.parametrize("value", [
    {Symbol("step"): Symbol("stage"), Symbol("snapshots"): ["x", "x"], Symbol("opts"): {Symbol("port"): 22}},
    RubyObject("VzCt", {"@ctid": "101", "@cfg": {"A": None, "B": True}, "@text": "žluťoučký"}),
    [0, 1, -1, 122, 123, -123, -124, 255, 256, -256, 65536, -70000, 2**30, -(2**30) - 1, 2**31, -(2**40), 2**70],
])
def test_what_is_written_reads_back(value):
    assert loads(dumps(value)) == value


def test_not_marshal_is_refused():
    with pytest.raises(MarshalError):
        loads(b'{"step": "sync"}')
    with pytest.raises(MarshalError):
        loads(RUBY_STATE[:40])
