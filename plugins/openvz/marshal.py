"""Ruby's Marshal format 4.8, read (and written, for the lab's converter): the converter keeps
a migration's state in ~/.vpsadminos-converter/<ctid>.state as `Marshal.dump` of
{step:, vz_ct:, target_ct:, opts:, snapshots:} (research vpsadminos.md §1.4), the objects
being the converter's own classes. The DAG reads the step from it.

Read: nil, true, false, integers (fixnum and bignum), floats, strings (with or without an
encoding), symbols and symbol links, arrays, hashes (and with a default), objects (a class
and instance variables, as RubyObject), object links, user-marshalled objects (_dump: the
bytes; marshal_load: the data), structs, classes and modules (their names). Written: what the
lab's converter stores (nil, booleans, integers, strings, symbols, arrays, hashes, objects).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field


class Symbol(str):
    """A Ruby symbol (`:step`), equal to its name as a string."""


@dataclass
class RubyObject:
    cls: str
    ivars: dict = field(default_factory=dict)  # "@name" -> value


class MarshalError(ValueError):
    pass


def loads(data: bytes):
    reader = _Reader(data)
    if data[:2] != b"\x04\x08":
        raise MarshalError(f"not Ruby Marshal 4.8 (starts {data[:2]!r})")
    reader.pos = 2
    return reader.value()


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0
        self.symbols: list[Symbol] = []
        self.objects: list = []

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise MarshalError("truncated")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise MarshalError("truncated")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def long(self) -> int:
        c = struct.unpack("b", bytes([self.byte()]))[0]
        if c == 0:
            return 0
        if 4 < c < 128:
            return c - 5
        if -129 < c < -4:
            return c + 5
        n = 0
        for i in range(abs(c)):
            n |= self.byte() << (8 * i)
        return n - (1 << (8 * abs(c))) if c < 0 else n

    def symbol(self) -> Symbol:
        kind = chr(self.byte())
        if kind == ";":
            return self.symbols[self.long()]
        if kind == ":":
            sym = Symbol(self.raw(self.long()).decode("utf-8", "replace"))
            self.symbols.append(sym)
            return sym
        if kind == "I":  # a symbol with an encoding
            sym = self.symbol()
            for _ in range(self.long()):
                self.symbol()
                self.value()
            return sym
        raise MarshalError(f"expected a symbol, got {kind!r}")

    def _keep(self, obj):
        self.objects.append(obj)
        return obj

    def value(self):  # one branch per type code, as the format lists them
        kind = chr(self.byte())
        if kind == "0":
            return None
        if kind == "T":
            return True
        if kind == "F":
            return False
        if kind == "i":
            return self.long()
        if kind in (":", ";"):
            self.pos -= 1
            return self.symbol()
        if kind == "@":
            return self.objects[self.long()]
        if kind == "I":  # the next value with instance variables (a string's encoding)
            index = len(self.objects)
            inner = self.value()
            encoding = None
            for _ in range(self.long()):
                name, val = self.symbol(), self.value()
                if name == "E":
                    encoding = "utf-8" if val else "ascii"
                elif name == "encoding":
                    encoding = val.decode() if isinstance(val, bytes) else str(val)
            if isinstance(inner, bytes):
                try:
                    inner = inner.decode(encoding or "latin-1", "replace")
                except LookupError:  # an encoding Python does not know: the bytes as they are
                    inner = inner.decode("latin-1")
                self.objects[index] = inner
            return inner
        if kind == '"':
            return self._keep(self.raw(self.long()))
        if kind == "l":
            sign = self.byte()
            n = int.from_bytes(self.raw(self.long() * 2), "little")
            return self._keep(n if sign == ord("+") else -n)
        if kind == "f":
            return self._keep(float(self.raw(self.long()).decode()))
        if kind == "[":
            items = self._keep([])
            items.extend(self.value() for _ in range(self.long()))
            return items
        if kind in ("{", "}"):
            mapping = self._keep({})
            for _ in range(self.long()):
                key = self.value()
                mapping[key] = self.value()
            if kind == "}":
                self.value()  # the hash's default
            return mapping
        if kind in ("o", "S"):  # an object (instance variables) or a struct (members)
            obj = self._keep(RubyObject(str(self.symbol())))
            for _ in range(self.long()):
                name = self.symbol()
                obj.ivars[str(name)] = self.value()
            return obj
        if kind == "u":  # _dump: the class and its bytes
            cls = str(self.symbol())
            return self._keep(RubyObject(cls, {"_dump": self.raw(self.long())}))
        if kind == "U":  # marshal_load: the class and its data
            obj = self._keep(RubyObject(str(self.symbol())))
            obj.ivars["_data"] = self.value()
            return obj
        if kind in ("c", "m", "M"):
            return self._keep(self.raw(self.long()).decode())
        if kind == "e":  # extended by a module: the module, then the object
            self.symbol()
            return self.value()
        if kind == "C":  # a subclass of String, Array, Hash or Regexp: its data
            self.symbol()
            return self.value()
        raise MarshalError(f"unsupported Marshal type {kind!r} at byte {self.pos - 1}")


def dumps(obj) -> bytes:
    """Marshal.dump of nil, booleans, integers, str (UTF-8 strings), Symbol, list, dict and
    RubyObject (what the lab's converter stores). No object links are written."""
    out = bytearray(b"\x04\x08")
    symbols: dict[str, int] = {}

    def long(n: int) -> None:  # Ruby's w_long
        if n == 0:
            out.append(0)
        elif 0 < n < 123:
            out.append(n + 5)
        elif -124 < n < 0:
            out.append((n - 5) & 0xFF)
        else:
            data = bytearray()
            while True:
                data.append(n & 0xFF)
                n >>= 8
                if n in (0, -1):
                    break
            out.append(len(data) if n == 0 else (-len(data)) & 0xFF)
            out.extend(data)

    def symbol(name: str) -> None:
        if name in symbols:
            out.append(ord(";"))
            long(symbols[name])
            return
        symbols[name] = len(symbols)
        data = name.encode()
        out.append(ord(":"))
        long(len(data))
        out.extend(data)

    def write(v) -> None:
        if v is None:
            out.append(ord("0"))
        elif v is True:
            out.append(ord("T"))
        elif v is False:
            out.append(ord("F"))
        elif isinstance(v, int):
            if -(1 << 30) <= v < (1 << 30):
                out.append(ord("i"))
                long(v)
            else:
                out.extend(b"l+" if v >= 0 else b"l-")
                data = abs(v).to_bytes((abs(v).bit_length() + 15) // 16 * 2, "little")
                long(len(data) // 2)
                out.extend(data)
        elif isinstance(v, Symbol):
            symbol(v)
        elif isinstance(v, str):
            data = v.encode()
            out.extend(b'I"')
            long(len(data))
            out.extend(data)
            long(1)
            symbol("E")
            out.append(ord("T"))
        elif isinstance(v, list):
            out.append(ord("["))
            long(len(v))
            for item in v:
                write(item)
        elif isinstance(v, dict):
            out.append(ord("{"))
            long(len(v))
            for key, item in v.items():
                write(key)
                write(item)
        elif isinstance(v, RubyObject):
            out.append(ord("o"))
            symbol(v.cls)
            long(len(v.ivars))
            for name, item in v.ivars.items():
                symbol(name)
                write(item)
        else:
            raise MarshalError(f"cannot write {type(v).__name__}")

    write(obj)
    return bytes(out)
