# SPDX-License-Identifier: Apache-2.0
"""int8 residual additions computed instead of looked up (lower/int8_tables.py pair_formula,
kernels::add_byte_pairs): ``DQ(a) + DQ(b) [-> Relu] -> Q`` is lowered to QuantizeLinear with
x_scales / x_zero_points / relu attributes and no table where the float32 formula gives the
65536-entry table's bytes (onnxruntime op by op) for every pair, else the table stays.

Every pair of bytes runs through edgepack-graph-run (EDGEPACK_CPU_ISA capped to generic and
avx2, and uncapped) and must equal onnxruntime byte for byte. The vector clones follow the CPU,
not the cap, so the kernel is also built on its own for each x86 vector width (and for aarch64
and armhf under qemu-user, with clang where present) with -ffp-contract=fast, as the kernels
are: a fused multiply-add would round differently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from graph_runner import run_device
from onnx import TensorProto, helper, numpy_helper
from sdk_host import SdkBuild

from edgepack.lower import device_graph as dg
from edgepack.lower.lowering import lower

Array = np.ndarray[Any, Any]
REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "sdk_templates" / "src"
TYPES = {"uint8": TensorProto.UINT8, "int8": TensorProto.INT8}
NP = {"uint8": np.uint8, "int8": np.int8}

# (sa, za, sb, zb, sy, zy, relu, a's, b's and y's dtype)
Case = tuple[float, int, float, int, float, int, bool, str, str, str]
CASES: list[Case] = [
    (0.0121, 107, 0.01096, 0, 0.0135, 111, False, "uint8", "uint8", "uint8"),  # one zp 0
    (0.01, 0, 0.02, 0, 0.03, 0, True, "uint8", "uint8", "uint8"),  # Relu, zero points 0
    (0.0098, 124, 0.0100, 105, 0.0127, 0, True, "uint8", "uint8", "uint8"),
    (0.05, -3, 0.04, 7, 0.07, -10, False, "int8", "int8", "int8"),
    (0.05, 0, 0.04, 120, 0.07, 5, True, "int8", "uint8", "int8"),
    (0.5, 200, 0.25, -128, 0.125, 128, False, "uint8", "int8", "uint8"),  # .5 ties
    (0.0022, 33, 0.0161, 250, 0.0039, 250, True, "uint8", "uint8", "uint8"),  # saturating
]
# A negative y_scale after a Relu: the runtime's clamp (Relu folded into the lower bound) is
# not the chain's, so the exact check fails and the table stays.
FAILING: Case = (0.013, 128, 0.013, 128, -0.02, 128, True, "uint8", "uint8", "uint8")


def _model(case: Case, n: int) -> onnx.ModelProto:
    """y = Q(DQ(a) + DQ(b) [-> Relu]) on byte inputs a, b of n values."""
    sa, za, sb, zb, sy, zy, relu, ta, tb, ty = case
    inits = [numpy_helper.from_array(np.array(v, d), name) for name, v, d in [
        ("sa", sa, np.float32), ("za", za, NP[ta]), ("sb", sb, np.float32), ("zb", zb, NP[tb]),
        ("sy", sy, np.float32), ("zy", zy, NP[ty])]]
    nodes = [helper.make_node("DequantizeLinear", ["a", "sa", "za"], ["fa"]),
             helper.make_node("DequantizeLinear", ["b", "sb", "zb"], ["fb"]),
             helper.make_node("Add", ["fa", "fb"], ["s"])]
    if relu:
        nodes.append(helper.make_node("Relu", ["s"], ["r"]))
    nodes.append(helper.make_node("QuantizeLinear", ["r" if relu else "s", "sy", "zy"], ["y"]))
    graph = helper.make_graph(
        nodes, "pair", [helper.make_tensor_value_info("a", TYPES[ta], [1, n]),
                        helper.make_tensor_value_info("b", TYPES[tb], [1, n])],
        [helper.make_tensor_value_info("y", TYPES[ty], [1, n])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _pairs(case: Case, extra: int = 37) -> dict[str, Array]:
    """Every (a, b) byte pair, then ``extra`` random ones (a tail after the vector blocks)."""
    byte = np.arange(256, dtype=np.uint8)
    rng = np.random.default_rng(5)
    a = np.concatenate([np.repeat(byte, 256), rng.integers(0, 256, extra, dtype=np.uint8)])
    b = np.concatenate([np.tile(byte, 256), rng.integers(0, 256, extra, dtype=np.uint8)])
    return {"a": a.view(NP[case[7]])[None], "b": b.view(NP[case[8]])[None]}


def _ort(model: onnx.ModelProto, feeds: dict[str, Array]) -> Array:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, feeds)[0])


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_residual_add_computed_equals_the_table(sdk_host: SdkBuild, isa: str,
                                                case: Case) -> None:
    feeds = _pairs(case)
    model = _model(case, feeds["a"].size)
    (node,) = dg.parse(lower(model)).nodes
    assert node.op_type == "QuantizeLinear" and node.inputs[3] is None
    assert node.inputs[4] is not None
    assert node.attrs["relu"].value == int(case[6])
    assert node.attrs["x_zero_points"].value == [case[1], case[3]]
    got = run_device(sdk_host.build, model, feeds)["y"]
    want = _ort(model, feeds)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_residual_add_keeps_the_table_where_the_formula_differs(sdk_host: SdkBuild) -> None:
    feeds = _pairs(FAILING)
    model = _model(FAILING, feeds["a"].size)
    (node,) = dg.parse(lower(model)).nodes
    assert node.op_type == "QuantizeLinear" and node.inputs[3] is not None
    assert "relu" not in node.attrs
    np.testing.assert_array_equal(run_device(sdk_host.build, model, feeds)["y"],
                                  _ort(model, feeds))


def _c2f_like() -> onnx.ModelProto:
    """YOLOv8's bottleneck: t = Q(x) is read by a residual Add and by a Concat's requantisation
    (one DequantizeLinear of t for both), the Add's other side is a SiLU (table) of Q(z)."""
    shape = [1, 4, 6, 10]
    params = {"x": (0.04, 120), "z": (0.05, 100), "sig": (1 / 255, 0), "silu": (0.03, 20),
              "y": (0.06, 90), "r": (0.05, 128)}
    inits = []
    for k, (s, z) in params.items():
        inits += [numpy_helper.from_array(np.array(s, np.float32), f"{k}_s"),
                  numpy_helper.from_array(np.array(z, np.uint8), f"{k}_z")]

    def q(src: str, k: str, out: str) -> onnx.NodeProto:
        return helper.make_node("QuantizeLinear", [src, f"{k}_s", f"{k}_z"], [out])

    def dq(src: str, k: str, out: str) -> onnx.NodeProto:
        return helper.make_node("DequantizeLinear", [src, f"{k}_s", f"{k}_z"], [out])

    nodes = [q("x", "x", "t"), dq("t", "x", "tf"), q("z", "z", "zq"), dq("zq", "z", "zf"),
             helper.make_node("Sigmoid", ["zf"], ["sg"]), q("sg", "sig", "sgq"),
             dq("sgq", "sig", "sgf"), dq("zq", "z", "zf2"),
             helper.make_node("Mul", ["zf2", "sgf"], ["m"]), q("m", "silu", "mq"),
             dq("mq", "silu", "mf"), helper.make_node("Add", ["tf", "mf"], ["s"]),
             q("s", "y", "y"), q("tf", "r", "r")]
    graph = helper.make_graph(
        nodes, "c2f", [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape)
                       for n in ("x", "z")],
        [helper.make_tensor_value_info(n, TensorProto.UINT8, shape) for n in ("y", "r")], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_residual_add_of_a_silu_with_a_shared_dequantize(sdk_host: SdkBuild) -> None:
    """The Add is computed (not merged with the SiLU into a 65536-entry table), the SiLU and
    the requantisation are 256-entry tables, and the DequantizeLinear they shared goes."""
    model = _c2f_like()
    nodes = dg.parse(lower(model)).nodes
    assert [n.op_type for n in nodes] == ["QuantizeLinear"] * 5
    computed = [n for n in nodes if "relu" in n.attrs]
    assert len(computed) == 1
    tables = [n for n in nodes if len(n.inputs) == 4]
    assert len(tables) == 2  # the SiLU and the requantisation
    rng = np.random.default_rng(4)
    feeds = {k: (rng.standard_normal((1, 4, 6, 10)) * 3).astype(np.float32) for k in "xz"}
    got = run_device(sdk_host.build, model, feeds)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    for name, want in zip(("y", "r"), session.run(None, feeds), strict=True):
        np.testing.assert_array_equal(got[name], want)


# --- the kernel alone, per vector width and architecture ----------------------------------------

HARNESS = r"""
#include <cstdio>
#include <cstdlib>
#include "runtime/kernels/quantize.h"
using namespace edgepack::kernels;
// args: sa za sb zb sy zy relu y_signed a_signed b_signed; writes y for every pair (a, b)
int main(int argc, char** argv) {
  if (argc != 11) return 2;
  BytePairAdd p{};
  p.scale_a = strtof(argv[1], nullptr);
  p.zero_a = atoi(argv[2]);
  p.scale_b = strtof(argv[3], nullptr);
  p.zero_b = atoi(argv[4]);
  p.scale_y = strtof(argv[5], nullptr);
  p.zero_y = static_cast<float>(atoi(argv[6]));
  const int relu = atoi(argv[7]), ys = atoi(argv[8]), as = atoi(argv[9]), bs = atoi(argv[10]);
  p.lo = (ys ? -128.f : 0.f) - p.zero_y;
  p.hi = (ys ? 127.f : 255.f) - p.zero_y;
  if (relu && p.lo < 0) p.lo = 0;
  static uint8_t a[65536 + 3], b[65536 + 3], y[65536 + 3];  // +3: unaligned
  for (int i = 0; i < 65536; ++i) { a[i + 3] = i >> 8; b[i + 3] = i & 255; }
  const int8_t* sa = reinterpret_cast<const int8_t*>(a + 3);
  const int8_t* sb = reinterpret_cast<const int8_t*>(b + 3);
  for (int i = 0, n = 29; i < 65536; i += n, n = 65536 - n) {  // tails of 13 and 3 elements
    if (as && bs) add_byte_pairs(sa + i, sb + i, y + 3 + i, n, p);
    if (as && !bs) add_byte_pairs(sa + i, b + 3 + i, y + 3 + i, n, p);
    if (!as && bs) add_byte_pairs(a + 3 + i, sb + i, y + 3 + i, n, p);
    if (!as && !bs) add_byte_pairs(a + 3 + i, b + 3 + i, y + 3 + i, n, p);
  }
  fwrite(y + 3, 1, 65536, stdout);
  return 0;
}
"""


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


def _variants() -> list[tuple[str, list[str], list[str]]]:
    """(name, compile command, run prefix): g++ per x86 width without clones (-U__linux__
    drops EDGEPACK_VECTOR_CLONES) and with them, clang, and the cross compilers."""
    out: list[tuple[str, list[str], list[str]]] = []
    x86 = os.uname().machine == "x86_64"
    if x86 and shutil.which("g++"):
        out += [("gcc-clones", ["g++"], []), ("gcc-sse2", ["g++", "-U__linux__"], []),
                ("gcc-avx2", ["g++", "-U__linux__", "-march=x86-64-v3"], [])]
        if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= _cpu_flags():
            out.append(("gcc-avx512", ["g++", "-U__linux__", "-march=x86-64-v4"], []))
        if shutil.which("clang++"):
            out.append(("clang-avx2", ["clang++", "-march=x86-64-v3"], []))
    for name, cxx, flags, qemu, root in [
            ("aarch64", "aarch64-linux-gnu-g++", ["-mcpu=cortex-a72"], "qemu-aarch64",
             "/usr/aarch64-linux-gnu"),
            ("armhf", "arm-linux-gnueabihf-g++",
             ["-mcpu=cortex-a53", "-mfpu=neon-fp-armv8", "-mfloat-abi=hard"], "qemu-arm",
             "/usr/arm-linux-gnueabihf")]:
        if shutil.which(cxx) and shutil.which(qemu):
            out.append((name, [cxx, *flags], [qemu, "-L", root]))
    return out


@pytest.mark.parametrize("variant", _variants(), ids=lambda v: v[0])
def test_add_byte_pairs_kernel_bytes(tmp_path: Path,
                                     variant: tuple[str, list[str], list[str]]) -> None:
    name, cxx, prefix = variant
    (tmp_path / "h.cpp").write_text(HARNESS)
    exe = tmp_path / f"h-{name}"
    subprocess.run([*cxx, "-std=c++17", "-O3", "-ffp-contract=fast", "-fno-trapping-math",
                    f"-I{SRC}", str(tmp_path / "h.cpp"),
                    str(SRC / "runtime" / "kernels" / "quantize.cpp"),
                    str(SRC / "runtime" / "kernels" / "cpu_isa.cpp"), "-o", str(exe),
                    "-lpthread"], check=True, capture_output=True)
    for case in [*CASES, FAILING]:
        sa, za, sb, zb, sy, zy, relu, ta, tb, ty = case
        feeds = _pairs(case, extra=0)
        args = [repr(float(np.float32(sa))), str(za), repr(float(np.float32(sb))), str(zb),
                repr(float(np.float32(sy))), str(zy), str(int(relu)), str(int(ty == "int8")),
                str(int(ta == "int8")), str(int(tb == "int8"))]
        want = _ort(_model(case, 65536), feeds).reshape(-1).view(np.uint8)
        # x86: the AVX-512 intrinsics where the CPU has them, and the loop (capped at AVX2)
        for cap in ["", "avx2"] if not prefix else [""]:
            env = {**os.environ, "EDGEPACK_CPU_ISA": cap}
            proc = subprocess.run([*prefix, str(exe), *args], check=True, capture_output=True,
                                  env=env)
            got = np.frombuffer(proc.stdout, np.uint8)
            if case is FAILING:  # the formula is not the chain here (lowering keeps the table)
                assert not np.array_equal(got, want)
            else:
                np.testing.assert_array_equal(got, want, err_msg=f"{name} {cap} {case}")
