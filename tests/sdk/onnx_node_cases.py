# SPDX-License-Identifier: Apache-2.0
"""The ONNX backend node tests (``onnx.backend.test.case.node``) run through edgepack.

Each single-node case of an op in the capability table (lower/op_table.toml) has its inputs
that the table marks ``const_inputs`` bound to the case's values (a packed model has them
constant), is converted to opset 17 when it declares another opset (with ingest's own
conversion, model/opset.py; a case it cannot convert fails), lowered, run by the native
``edgepack-graph-run`` (two worker processes, one runner process per case) and compared with the
case's expected outputs at the case's own tolerance (onnx's rtol/atol, NaN where NaN is
expected). Cases whose tensors have a dtype edgepack has no code for are counted apart.

The cases are generated once per onnx version into ``build/onnx-node-cases/`` (the onnx package
writes them from Python in about a minute). Used by tests/sdk/test_onnx_node.py; run as a script
to write docs/onnx-node-tests.md:

    python tests/sdk/onnx_node_cases.py \
        --graph-run build/sdk-host/tools/graph_run/edgepack-graph-run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from edgepack.errors import EdgepackError
from edgepack.lower.capabilities import op_table
from edgepack.lower.lowering import OPSET, lower
from edgepack.model.opset import to_canonical

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "build" / "onnx-node-cases" / onnx.__version__
TABLE_DOC = REPO / "docs" / "onnx-node-tests.md"
THRESHOLD = 98.0  # % of the cases in edgepack's dtypes that must pass (99.5% measured)
NUMPY_NATIVE = {"bool", "float16", "float32", "float64", "int8", "int16", "int32", "int64",
                "uint8", "uint16", "uint32", "uint64"}


@dataclass(frozen=True)
class CaseResult:
    name: str
    op: str
    opset: int
    error: str  # "" = passed
    foreign_dtype: bool = False  # a tensor dtype edgepack has no code for (string, float8...)

    @property
    def passed(self) -> bool:
        return not self.error


def generate_cases(cache: Path = CACHE) -> Path:
    """Writes every single-node backend case to ``cache`` (once; later calls reuse it)."""
    if (cache / "done").exists():
        return cache
    from onnx.backend.test.case import node as node_cases

    tmp = Path(tempfile.mkdtemp(prefix="cases-", dir=cache.parent if cache.parent.exists()
                                else _mkdir(cache.parent)))
    with warnings.catch_warnings():  # the case generators overflow on purpose
        warnings.simplefilter("ignore")
        cases = node_cases.collect_testcases(None)
    for case in cases:
        if case.kind != "node" or case.model is None or len(case.model.graph.node) != 1:
            continue
        d = tmp / case.name
        d.mkdir()
        (d / "model.onnx").write_bytes(case.model.SerializeToString())
        meta: dict[str, object] = {"rtol": case.rtol, "atol": case.atol, "sets": 0}
        ins = [i.name for i in case.model.graph.input]
        outs = [o.name for o in case.model.graph.output]
        for k, (feeds, expected) in enumerate(case.data_sets or []):
            arrays: dict[str, np.ndarray] = {}
            try:
                for name, v in zip(ins, feeds, strict=True):
                    arrays[f"in:{name}"] = _array(v)
                for name, v in zip(outs, expected, strict=True):
                    arrays[f"out:{name}"] = _array(v)
            except (ValueError, TypeError):  # sequences/optionals: not tensors
                meta["unsupported"] = "non-tensor inputs or outputs"
                break
            exotic = sorted({str(a.dtype) for a in arrays.values()
                             if a.dtype.name not in NUMPY_NATIVE})
            if exotic:  # string, bfloat16, float8, int4...: no edgepack dtype exists for them
                meta["unsupported"] = f"dtype {', '.join(exotic)} (no edgepack dtype)"
                break
            np.savez(d / f"data_{k}.npz", **arrays)  # type: ignore[arg-type]
            meta["sets"] = k + 1
        (d / "meta.json").write_text(json.dumps(meta))
    (tmp / "done").write_text("")
    if cache.exists():  # another process finished first
        shutil.rmtree(tmp)
    else:
        os.replace(tmp, cache)
    return cache


def _array(v: object) -> np.ndarray:
    if isinstance(v, onnx.TensorProto):
        return numpy_helper.to_array(v)
    if not isinstance(v, np.ndarray | np.generic | list | int | float | bool):
        raise TypeError(type(v).__name__)
    return np.asarray(v)


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def claimed_cases(cache: Path) -> Iterator[Path]:
    """The case folders whose single node is an op of the capability table."""
    table = op_table()
    for d in sorted(cache.iterdir()):
        if not d.is_dir():
            continue
        model = onnx.load(d / "model.onnx", load_external_data=False)
        node = model.graph.node[0]
        if node.domain in ("", "ai.onnx") and node.op_type in table:
            yield d


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


# Configuration a packed model holds constant although the runtime also takes it computed
# (TopK's K along axis 0, after NonMaxSuppression): bound like const_inputs.
PACKED_CONSTANT: dict[str, tuple[int, ...]] = {"TopK": (1,)}


def _bind_constants(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> onnx.ModelProto:
    """A copy with the node's const_inputs (per the table) turned into initializers."""
    node = model.graph.node[0]
    positions = (*op_table()[node.op_type].const_inputs, *PACKED_CONSTANT.get(node.op_type, ()))
    names = {node.input[i] for i in positions if i < len(node.input) and node.input[i]}
    m = onnx.ModelProto()
    m.CopyFrom(model)
    keep = [i for i in m.graph.input if i.name not in names]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    m.graph.initializer.extend(numpy_helper.from_array(feeds[n], n) for n in sorted(names)
                               if n in feeds)
    return m


def to_opset17(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """The case in opset-17 form, converted the way ingest converts models."""
    return to_canonical(model.graph.name, model, opset)


def _npy_name(tensor: str) -> str:
    return "".join("_" if c in "/:\\" else c for c in tensor) + ".npy"


def _compare(name: str, got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> str:
    if got.dtype != want.dtype:
        return f"output {name}: dtype {got.dtype}, expected {want.dtype}"
    if got.shape != want.shape:
        return f"output {name}: shape {list(got.shape)}, expected {list(want.shape)}"
    if want.dtype.kind == "f":
        try:
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
        except AssertionError:
            err = np.nanmax(np.abs(got.astype(np.float64) - want.astype(np.float64)))
            return f"output {name}: values differ (max abs error {err:.3g})"
        return ""
    return "" if np.array_equal(got, want) else f"output {name}: values differ"


def run_case(case_dir: Path, graph_run: Path) -> CaseResult:
    model = onnx.load(case_dir / "model.onnx")
    node = model.graph.node[0]
    opset = _opset(model)
    meta = json.loads((case_dir / "meta.json").read_text())

    def result(error: str, foreign: bool = False) -> CaseResult:
        return CaseResult(case_dir.name, node.op_type, opset, error, foreign)

    if meta.get("unsupported") or not meta["sets"]:
        return result(meta.get("unsupported", "no data sets"), True)
    outs = [o.name for o in model.graph.output]
    for k in range(meta["sets"]):
        with np.load(case_dir / f"data_{k}.npz") as z:
            data = {key: z[key] for key in z.files}
        feeds = {key[3:]: v for key, v in data.items() if key.startswith("in:")}
        bound = _bind_constants(model, feeds)
        try:
            bound = to_opset17(bound, opset)
        except EdgepackError as exc:
            return result(f"convert to opset {OPSET}: {str(exc).splitlines()[0][:160]}")
        try:
            blob = lower(bound)
        except EdgepackError as exc:
            return result(f"lower: {exc}")
        except Exception as exc:  # a bug in lowering: counted, named
            return result(f"lower raised {type(exc).__name__}: {str(exc)[:160]}")
        inputs = {i.name for i in bound.graph.input}
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            (t / "in").mkdir()
            (t / "out").mkdir()
            (t / "g.epdg").write_bytes(blob)
            for name, v in feeds.items():
                if name in inputs:
                    np.save(t / "in" / _npy_name(name), v)
            proc = subprocess.run(
                [str(graph_run), str(t / "g.epdg"), "--inputs", str(t / "in"), "--outputs",
                 str(t / "out")], capture_output=True, text=True, check=False, timeout=60,
            )
            if proc.returncode != 0:
                return result(f"run: {proc.stderr.strip()[:200]}")
            for name in outs:
                err = _compare(name, np.load(t / "out" / _npy_name(name)), data[f"out:{name}"],
                               meta["rtol"], meta["atol"])
                if err:
                    return result(err)
    return result("")


def run_all(cache: Path, graph_run: Path, workers: int = 2) -> list[CaseResult]:
    cases = list(claimed_cases(cache))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run_case, cases, [graph_run] * len(cases), chunksize=8))


def pass_table(results: list[CaseResult]) -> str:
    """The per-op pass table (markdown) with the failing cases and why."""
    per_op: dict[str, list[CaseResult]] = {}
    for r in results:
        per_op.setdefault(r.op, []).append(r)
    native = [r for r in results if not r.foreign_dtype]
    lines = [
        "# ONNX backend node tests",
        "",
        "The single-node cases of `onnx.backend.test.case.node` (onnx "
        f"{onnx.__version__}) for every op in the capability table",
        "(`packager/edgepack/lower/op_table.toml`), run as-is at the case's own opset: converted",
        "to opset 17 the way ingest converts models (`model/opset.py`), lowered, run by the native",
        "`edgepack-graph-run` and compared with the case's expected outputs at the case's own",
        "tolerance. Inputs the table lists as `const_inputs` (and TopK's K) are bound to the",
        "case's values, as they are constant in a packed model.",
        "",
        "Written by `python tests/sdk/onnx_node_cases.py --graph-run <edgepack-graph-run>`;",
        "`tests/sdk/test_onnx_node.py` runs the same cases in CI and fails when fewer than "
        f"{THRESHOLD:.0f}%",
        "of the cases in edgepack's dtypes pass. Cases with a dtype edgepack has no code for",
        "(string, bfloat16, float8, int4/int2...) are listed and counted in the first total only.",
        "",
        f"**All cases: {sum(r.passed for r in results)} of {len(results)} pass "
        f"({pass_rate(results):.1f}%). Cases in edgepack's dtypes: "
        f"{sum(r.passed for r in native)} of {len(native)} pass ({pass_rate(native):.1f}%).**",
        "",
        "| op | passed | cases | foreign-dtype cases |",
        "|---|---:|---:|---:|",
    ]
    for op in sorted(per_op):
        rs = per_op[op]
        lines.append(f"| {op} | {sum(r.passed for r in rs)} | {len(rs)} | "
                     f"{sum(r.foreign_dtype for r in rs)} |")
    failing = [r for r in results if not r.passed and not r.foreign_dtype]
    if failing:
        lines += ["", "## Failing cases (edgepack dtypes)", "", "| case | opset | why |",
                  "|---|---:|---|"]
        for r in sorted(failing, key=lambda r: r.name):
            why = r.error.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {r.name} | {r.opset} | {why} |")
    return "\n".join(lines) + "\n"


def pass_rate(results: list[CaseResult]) -> float:
    return 100.0 * sum(r.passed for r in results) / max(len(results), 1)


def summary(results: list[CaseResult]) -> Counter[str]:
    return Counter("pass" if r.passed else r.error.split(":")[0] for r in results)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--graph-run", type=Path, required=True, help="edgepack-graph-run binary")
    p.add_argument("--write", type=Path, default=TABLE_DOC, help="markdown table to write")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    results = run_all(generate_cases(), args.graph_run, args.workers)
    args.write.write_text(pass_table(results), encoding="utf-8")
    native = [r for r in results if not r.foreign_dtype]
    print(f"all: {sum(r.passed for r in results)}/{len(results)}; edgepack dtypes: "
          f"{sum(r.passed for r in native)}/{len(native)} ({pass_rate(native):.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
