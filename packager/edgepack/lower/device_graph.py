# SPDX-License-Identifier: Apache-2.0
"""The device graph format (``EPDG`` 1.0): records, the offline memory plan, writer and reader.

The byte layout is specified in docs/device-graph-format.md; the C++ loader is
``sdk_templates/src/runtime/graph.cpp``. ``lower.py`` turns ONNX into these records.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"EPDG"
VERSION_MAJOR = 1
VERSION_MINOR = 0
HEADER_SIZE = 144
TENSOR_RECORD = 96
NODE_RECORD = 40
ATTR_RECORD = 24
MAX_RANK = 8
NO_TENSOR = 0xFFFFFFFF
ALIGN = 64

FLAG_INPUT = 1
FLAG_OUTPUT = 2
FLAG_CONSTANT = 4
FLAG_DYNAMIC_DIM0 = 8

# dtype codes shared with edgepack::DType
DTYPES: dict[str, int] = {"float32": 1, "uint8": 2, "int32": 3, "int64": 4, "bool": 5, "int8": 6,
                          "int16": 7, "float16": 8, "uint16": 9, "uint32": 10, "uint64": 11,
                          "float64": 12}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
NUMPY_DTYPES: dict[str, np.dtype[np.generic]] = {
    "float32": np.dtype("<f4"),
    "uint8": np.dtype("u1"),
    "int32": np.dtype("<i4"),
    "int64": np.dtype("<i8"),
    "bool": np.dtype("?"),
    "int8": np.dtype("i1"),
    "int16": np.dtype("<i2"),
    "float16": np.dtype("<f2"),
    "uint16": np.dtype("<u2"),
    "uint32": np.dtype("<u4"),
    "uint64": np.dtype("<u8"),
    "float64": np.dtype("<f8"),
}

ATTR_INT, ATTR_FLOAT, ATTR_INTS, ATTR_FLOATS, ATTR_STRING = 1, 2, 3, 4, 5
AttrValue = int | float | str | list[int] | list[float]


@dataclass
class Attr:
    kind: int  # ATTR_*
    value: AttrValue


@dataclass
class TensorDef:
    name: str
    dtype: str
    shape: list[int]
    flags: int = 0
    data: np.ndarray | None = None  # constants only
    offset: int = 0  # arena offset (non-constants) or data-section offset (constants)

    @property
    def nbytes(self) -> int:
        n = NUMPY_DTYPES[self.dtype].itemsize
        for d in self.shape:
            n *= d
        return n

    @property
    def is_constant(self) -> bool:
        return bool(self.flags & FLAG_CONSTANT)


@dataclass
class NodeDef:
    op_type: str
    name: str
    inputs: list[int | None]  # tensor indices; None = omitted optional input
    outputs: list[int]
    attrs: dict[str, Attr] = field(default_factory=dict)


@dataclass
class DeviceGraph:
    tensors: list[TensorDef]
    nodes: list[NodeDef]
    inputs: list[int]
    outputs: list[int]
    arena_size: int = 0


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def lifetimes(graph: DeviceGraph) -> dict[int, tuple[int, int]]:
    """Node-index interval [first write, last read] of every non-constant tensor."""
    live: dict[int, list[int]] = {}
    end = len(graph.nodes)
    for t in graph.inputs:
        live[t] = [-1, -1]
    for i, node in enumerate(graph.nodes):
        for t in node.outputs:
            live.setdefault(t, [i, i])
        for ti in node.inputs:
            if ti is not None and not graph.tensors[ti].is_constant:
                live.setdefault(ti, [i, i])[1] = i
    # Graph inputs and outputs live for the whole run: the app sets inputs once and may run
    # again (ep_session_run twice, bench loops), so nothing may reuse their space.
    for t in (*graph.inputs, *graph.outputs):
        live.setdefault(t, [-1, end])[1] = end
    return {t: (a, b) for t, (a, b) in live.items()}


def concat_in_place(graph: DeviceGraph) -> dict[int, list[tuple[int, int]]]:
    """Concats whose inputs can be written where the output keeps them: output tensor ->
    [(input tensor, byte offset in the output)]. A Concat over an axis with only 1s before it
    (batch 1, channels: YOLO's C2f blocks, ShuffleNet) lays each input out as one contiguous
    block of its output; when every input is written by one earlier node, is no graph input or
    output, constant or dynamic, feeds no other such Concat and starts at a 64-byte boundary of
    the output, the planner puts the inputs there and the Concat copies nothing (the runtime's
    Concat skips a part that already lies in place)."""
    written = {t for n in graph.nodes for t in n.outputs}
    boundary = set(graph.inputs) | set(graph.outputs)
    taken: set[int] = set()
    groups: dict[int, list[tuple[int, int]]] = {}
    for node in graph.nodes:
        if node.op_type != "Concat" or len(node.outputs) != 1 or "axis" not in node.attrs:
            continue
        out = node.outputs[0]
        t_out = graph.tensors[out]
        axis = int(node.attrs["axis"].value)  # type: ignore[arg-type]
        axis = axis + len(t_out.shape) if axis < 0 else axis
        parts = [i for i in node.inputs if i is not None]
        if (out in boundary or out in taken or t_out.flags & FLAG_DYNAMIC_DIM0
                or math.prod(t_out.shape[:axis]) != 1 or len(set(parts)) != len(parts)
                or len(parts) != len(node.inputs)):
            continue
        placed: list[tuple[int, int]] = []
        offset = 0
        for t in parts:
            td = graph.tensors[t]
            if (t in boundary or t in taken or t in groups or t not in written or td.is_constant
                    or td.flags & FLAG_DYNAMIC_DIM0 or offset % ALIGN != 0):
                break
            placed.append((t, offset))
            offset += td.nbytes
        if len(placed) != len(parts) or offset != t_out.nbytes:
            continue
        groups[out] = placed
        taken.update(parts)
        taken.add(out)
    return groups


# Ops whose output is their input's bytes under another shape.
VIEW_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"})


def view_aliases(graph: DeviceGraph,
                 groups: dict[int, list[tuple[int, int]]] | None = None) -> dict[int, int]:
    """Outputs of shape-only ops (VIEW_OPS) planned on their input's bytes: output tensor ->
    the tensor whose space it shares (the first of a chain). Every tensor is written once, so
    the two never differ; the runtime's Reshape then copies nothing (it skips a copy onto
    itself). Not for graph inputs or outputs (an app may bind its own buffers there),
    constants, a dynamic dim 0, different byte sizes, or an output that is itself part or
    result of an in-place Concat (``groups``, concat_in_place; an input may be). ShuffleNetV2's
    channel shuffles: 32 Reshapes, 0.13 ms at 1 thread, 0.42 at 2 (one thread copying what
    both wrote)."""
    boundary = set(graph.inputs) | set(graph.outputs)
    concat = set(groups or {}) | {t for parts in (groups or {}).values() for t, _ in parts}
    aliases: dict[int, int] = {}
    for node in graph.nodes:
        if node.op_type not in VIEW_OPS or len(node.outputs) != 1 or not node.inputs:
            continue
        src, out = node.inputs[0], node.outputs[0]
        if src is None:
            continue
        ts, to = graph.tensors[src], graph.tensors[out]
        if (src in boundary or out in boundary or out in concat
                or ts.is_constant or to.is_constant or ts.nbytes != to.nbytes
                or (ts.flags | to.flags) & FLAG_DYNAMIC_DIM0):
            continue
        aliases[out] = aliases.get(src, src)
    return aliases


def plan_memory(graph: DeviceGraph) -> None:
    """Assigns arena offsets: greedy by size (largest first), reusing space of dead tensors.
    The inputs of an in-place Concat (concat_in_place) lie inside its output, which is then
    live from the first of them being written to the last read of any of them; a shape-only
    op's output lies on its input (view_aliases), live as long as either."""
    spans = lifetimes(graph)
    groups = concat_in_place(graph)
    group_of = {t: out for out, parts in groups.items() for t, _ in parts}  # input -> its Concat
    for out, parts in groups.items():
        members = [out, *(t for t, _ in parts)]
        spans[out] = (min(spans[t][0] for t in members), max(spans[t][1] for t in members))
    aliases = view_aliases(graph, groups)
    for out, root in aliases.items():
        at = group_of.get(root, root)  # the tensor placed for the root's bytes
        spans[at] = (min(spans[at][0], spans[out][0]), max(spans[at][1], spans[out][1]))
    order = sorted((t for t in spans if t not in group_of and t not in aliases),
                   key=lambda t: (-graph.tensors[t].nbytes, t))
    placed: list[tuple[int, int, int, int]] = []  # offset, end, first, last
    arena = 0
    for t in order:
        size = _align(max(graph.tensors[t].nbytes, 1), ALIGN)
        first, last = spans[t]
        clashes = sorted(
            (o, e) for o, e, f, la in placed if not (la < first or last < f)
        )
        offset = 0
        for o, e in clashes:
            if offset + size <= o:
                break
            offset = max(offset, e)
        graph.tensors[t].offset = offset
        for part, at in groups.get(t, []):
            graph.tensors[part].offset = offset + at
        placed.append((offset, offset + size, first, last))
        arena = max(arena, offset + size)
    for out, root in aliases.items():
        graph.tensors[out].offset = graph.tensors[root].offset
    graph.arena_size = arena


class _Strings:
    def __init__(self) -> None:
        self.data = bytearray()
        self.index: dict[str, int] = {}

    def add(self, s: str) -> tuple[int, int]:
        b = s.encode("utf-8")
        if s not in self.index:
            self.index[s] = len(self.data)
            self.data += b
        return self.index[s], len(b)


def serialize(graph: DeviceGraph) -> bytes:
    """The graph's bytes (call plan_memory first)."""
    strings = _Strings()
    data = bytearray()

    def put_data(raw: bytes, align: int) -> int:
        data.extend(b"\0" * (_align(len(data), align) - len(data)))
        off = len(data)
        data.extend(raw)
        return off

    tensor_bytes = bytearray()
    for t in graph.tensors:
        if len(t.shape) > MAX_RANK:
            raise ValueError(f"tensor '{t.name}' has rank {len(t.shape)} > {MAX_RANK}")
        if t.is_constant:
            assert t.data is not None
            arr = np.ascontiguousarray(t.data, dtype=NUMPY_DTYPES[t.dtype])
            t.offset = put_data(arr.tobytes(), ALIGN)
        no, nl = strings.add(t.name)
        dims = [*t.shape, *([0] * (MAX_RANK - len(t.shape)))]
        tensor_bytes += struct.pack(
            "<IIBBHIQQ8q", no, nl, DTYPES[t.dtype], len(t.shape), t.flags, 0,
            t.offset, t.nbytes, *dims,
        )
    indices: list[int] = []
    attr_bytes = bytearray()
    node_bytes = bytearray()
    attr_count = 0
    for n in graph.nodes:
        op = strings.add(n.op_type)
        nm = strings.add(n.name)
        in_first = len(indices)
        indices += [NO_TENSOR if i is None else i for i in n.inputs]
        out_first = len(indices)
        indices += n.outputs
        a_first = attr_count
        for name, a in sorted(n.attrs.items()):
            an = strings.add(name)
            value: int
            count = 1
            if a.kind == ATTR_INT:
                assert isinstance(a.value, int)
                value = a.value & 0xFFFFFFFFFFFFFFFF
            elif a.kind == ATTR_FLOAT:
                assert isinstance(a.value, float | int)
                value = struct.unpack("<I", struct.pack("<f", float(a.value)))[0]
            elif a.kind == ATTR_INTS:
                assert isinstance(a.value, list)
                count = len(a.value)
                value = put_data(struct.pack(f"<{count}q", *a.value), 8)
            elif a.kind == ATTR_FLOATS:
                assert isinstance(a.value, list)
                count = len(a.value)
                value = put_data(struct.pack(f"<{count}f", *a.value), 8)
            else:
                assert isinstance(a.value, str)
                value, count = strings.add(a.value)
            attr_bytes += struct.pack("<IIB3xIQ", an[0], an[1], a.kind, count, value)
            attr_count += 1
        node_bytes += struct.pack(
            "<10I", op[0], op[1], nm[0], nm[1], in_first, len(n.inputs),
            out_first, len(n.outputs), a_first, attr_count - a_first,
        )
    gin = len(indices)
    indices += graph.inputs
    gout = len(indices)
    indices += graph.outputs

    pos = HEADER_SIZE
    str_off = pos
    pos = _align(pos + len(strings.data), 8)
    t_off = pos
    pos += len(tensor_bytes)
    n_off = pos
    pos += len(node_bytes)
    a_off = pos
    pos += len(attr_bytes)
    i_off = pos
    pos = _align(pos + 4 * len(indices), ALIGN)
    d_off = pos
    total = d_off + len(data)
    header = MAGIC + struct.pack(
        "<HHIIQQQQQIIQIIQIIQIIIIIIQQ",
        VERSION_MAJOR, VERSION_MINOR, HEADER_SIZE, 0, total, graph.arena_size,
        str_off, len(strings.data),
        t_off, len(graph.tensors), 0,
        n_off, len(graph.nodes), 0,
        a_off, attr_count, 0,
        i_off, len(indices), 0,
        gin, len(graph.inputs), gout, len(graph.outputs),
        d_off, len(data),
    )
    assert len(header) == HEADER_SIZE
    out = bytearray(total)
    out[:HEADER_SIZE] = header
    out[str_off : str_off + len(strings.data)] = strings.data
    out[t_off : t_off + len(tensor_bytes)] = tensor_bytes
    out[n_off : n_off + len(node_bytes)] = node_bytes
    out[a_off : a_off + len(attr_bytes)] = attr_bytes
    out[i_off : i_off + 4 * len(indices)] = struct.pack(f"<{len(indices)}I", *indices)
    out[d_off:] = data
    return bytes(out)


def parse(blob: bytes) -> DeviceGraph:
    """Reads a graph back (used by tests and tools; trusts nothing, raises ValueError)."""
    if len(blob) < HEADER_SIZE or blob[:4] != MAGIC:
        raise ValueError("not a device graph (bad magic)")
    h = struct.unpack_from("<HHIIQQQQQIIQIIQIIQIIIIIIQQ", blob, 4)
    (major, _minor, hsize, _fl, total, arena, s_off, s_len, t_off, t_cnt, _r1, n_off, n_cnt,
     _r2, a_off, a_cnt, _r3, i_off, i_cnt, _r4, gin, gin_n, gout, gout_n, d_off, d_len) = h
    if major != VERSION_MAJOR or hsize < HEADER_SIZE or total != len(blob):
        raise ValueError("unsupported version or size mismatch")
    strs = blob[s_off : s_off + s_len]
    data = blob[d_off : d_off + d_len]

    def string(off: int, ln: int) -> str:
        if off + ln > len(strs):
            raise ValueError("string out of range")
        return strs[off : off + ln].decode("utf-8")

    idx = list(struct.unpack_from(f"<{i_cnt}I", blob, i_off))
    tensors: list[TensorDef] = []
    for i in range(t_cnt):
        no, nl, dt, rank, flags, _r, off, nbytes, *dims = struct.unpack_from(
            "<IIBBHIQQ8q", blob, t_off + i * TENSOR_RECORD
        )
        t = TensorDef(string(no, nl), DTYPE_NAMES[dt], list(dims[:rank]), flags, None, off)
        if t.nbytes != nbytes:
            raise ValueError(f"tensor '{t.name}': byte size mismatch")
        if t.is_constant:
            t.data = np.frombuffer(data, NUMPY_DTYPES[t.dtype], t.nbytes // max(
                NUMPY_DTYPES[t.dtype].itemsize, 1), off).reshape(t.shape)
        tensors.append(t)
    attrs_raw = [struct.unpack_from("<IIB3xIQ", blob, a_off + i * ATTR_RECORD)
                 for i in range(a_cnt)]
    nodes: list[NodeDef] = []
    for i in range(n_cnt):
        o0, o1, m0, m1, if_, ic, of, oc, af, ac = struct.unpack_from(
            "<10I", blob, n_off + i * NODE_RECORD
        )
        attrs: dict[str, Attr] = {}
        for an, al, kind, count, value in attrs_raw[af : af + ac]:
            v: AttrValue
            if kind == ATTR_INT:
                v = struct.unpack("<q", struct.pack("<Q", value))[0]
            elif kind == ATTR_FLOAT:
                v = struct.unpack("<f", struct.pack("<I", value & 0xFFFFFFFF))[0]
            elif kind == ATTR_INTS:
                v = list(struct.unpack_from(f"<{count}q", data, value))
            elif kind == ATTR_FLOATS:
                v = list(struct.unpack_from(f"<{count}f", data, value))
            else:
                v = string(value, count)
            attrs[string(an, al)] = Attr(kind, v)
        ins: list[int | None] = [None if x == NO_TENSOR else x for x in idx[if_ : if_ + ic]]
        nodes.append(NodeDef(string(o0, o1), string(m0, m1), ins, idx[of : of + oc], attrs))
    return DeviceGraph(tensors, nodes, idx[gin : gin + gin_n], idx[gout : gout + gout_n], arena)
