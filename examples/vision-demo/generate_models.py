# SPDX-License-Identifier: Apache-2.0
"""Write the example's models: models/detector.onnx and models/classifier.onnx.

Both are seeded test models from ``edgepack.model.zoo`` (random weights, real topologies), so the
files are byte-identical on every run. Usage: ``python generate_models.py [--out DIR]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import onnx

from edgepack.model import zoo

HERE = Path(__file__).resolve().parent


def models() -> dict[str, onnx.ModelProto]:
    return {
        "detector.onnx": zoo.yolo_detector(seed=1, input_size=320, num_classes=8),
        "classifier.onnx": zoo.mobilenet_classifier(seed=2, input_size=96, num_classes=10),
    }


def write_models(out_dir: Path) -> list[Path]:
    """Write every model atomically (temp file in the same folder, then rename)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in models().items():
        data = model.SerializeToString(deterministic=True)
        target = out_dir / name
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "models", help="output folder")
    args = parser.parse_args()
    for path in write_models(args.out):
        print(path)


if __name__ == "__main__":
    main()
