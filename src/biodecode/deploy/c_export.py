"""C99 export of a trained network: write the sources, compile them with a C compiler, run the
program on windows, and measure flash and RAM of the compiled model.

``export_c`` writes ``model.h``, ``model.c`` and ``main.c``; ``compile_c`` builds the stdin/stdout
program with ``gcc -std=c99 -Wall -Werror``; ``run_c`` feeds it windows and reads the logits;
``c_sizes`` compiles ``model.c`` alone (for a Cortex-M4F with ``arm-none-eabi-gcc`` when asked,
else for this machine) and reads code, constant and static-RAM bytes with ``size`` and the stack
from ``-fstack-usage``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..errors import BiodecodeError, ConfigError
from ..evaluation.report import write_text_atomic
from .cgen import CSource, generate_c
from .cgraph import lower, run_graph

C_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-O2")
CORTEX_M4F = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")


class CCompileError(BiodecodeError):
    """The C compiler is missing or rejected the generated code."""


def export_c(model: nn.Module, out_dir: str | os.PathLike, calibration: np.ndarray | None = None,
             dtype: str = "int8", classes: list[str] | None = None, meta_lines: list[str] | None = None) -> CSource:
    """Write ``model.h``, ``model.c`` and ``main.c`` for ``model`` into ``out_dir``.

    calibration: windows ``(n, C, T)`` from the training side that set the int8 activation ranges
    (required for ``dtype="int8"``; never test windows)."""
    graph = lower(model)
    ranges = None
    if dtype == "int8":
        if calibration is None or len(calibration) == 0:
            raise ConfigError("C export: int8 needs calibration windows from the training side")
        ranges = run_graph(graph, np.asarray(calibration, np.float32), record=True)[1]
    src = generate_c(graph, dtype, ranges, classes, meta_lines)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in src.files.items():
        write_text_atomic(out / name, text)
    return src


def _compiler(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise CCompileError(f"C export: the C compiler {name!r} is not installed (needed to build and check the C code)")
    return path


def compile_c(c_dir: str | os.PathLike, exe: str | os.PathLike | None = None, compiler: str = "gcc",
              flags: tuple[str, ...] = C_FLAGS) -> Path:
    """Build ``main.c`` + ``model.c`` of ``c_dir`` into an executable (default ``c_dir/model``)."""
    c_dir = Path(c_dir)
    exe = Path(exe) if exe else c_dir / "model"
    cmd = [_compiler(compiler), *flags, str(c_dir / "main.c"), str(c_dir / "model.c"), "-lm", "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise CCompileError(f"C export: {' '.join(cmd)} failed:\n{r.stderr[-4000:]}")
    return exe


def run_c(exe: str | os.PathLike, X: np.ndarray, n_classes: int) -> np.ndarray:
    """Logits ``(n, n_classes)`` of the compiled program on windows ``X (n, C, T)``."""
    data = np.ascontiguousarray(X, dtype="<f4").tobytes()
    r = subprocess.run([str(exe)], input=data, capture_output=True)
    if r.returncode:
        raise CCompileError(f"{exe}: exit code {r.returncode}: {r.stderr.decode(errors='replace').strip()}")
    out = np.frombuffer(r.stdout, dtype="<f4")
    if out.size != len(X) * n_classes:
        raise CCompileError(f"{exe}: wrote {out.size} values for {len(X)} windows x {n_classes} classes")
    return out.reshape(len(X), n_classes).astype(np.float32)


def _stack_bytes(su_file: Path) -> int:
    """Worst call chain of the generated code: model_predict -> model_predict_int8 -> the largest kernel
    frame (kernels are leaves; libm's expm1f/logf frames not included)."""
    frames: dict[str, int] = {}
    for line in su_file.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            frames[parts[0].rsplit(":", 1)[-1]] = int(parts[1])
    entry = sum(frames.pop(f, 0) for f in ("model_predict", "model_predict_int8"))
    return entry + max(frames.values(), default=0)


def c_sizes(c_dir: str | os.PathLike, target: str = "host") -> dict[str, Any]:
    """Compile ``model.c`` at ``-Os`` and measure it: ``flash_bytes`` = code + constants (+ initialised
    data), ``ram_bytes`` = static RAM (the arena, and for int8 the quantised input buffer) + the stack
    of the deepest call chain (+ for float32 the caller's float input window). ``target``: "host" (gcc for this machine) or
    "cortex-m4f" (arm-none-eabi-gcc, ``-mcpu=cortex-m4 -mthumb -mfloat-abi=hard``)."""
    if target not in ("host", "cortex-m4f"):
        raise ConfigError(f"c_sizes: target must be host or cortex-m4f, got {target!r}")
    cc, size = ("arm-none-eabi-gcc", "arm-none-eabi-size") if target == "cortex-m4f" else ("gcc", "size")
    flags = ("-std=c99", "-Os", "-ffunction-sections", "-fdata-sections", "-fstack-usage", "-Wall", "-Werror")
    flags += CORTEX_M4F if target == "cortex-m4f" else ()
    c_dir = Path(c_dir).resolve()  # the compiler runs in a temporary folder (for its .su file)
    with tempfile.TemporaryDirectory() as tmp:
        obj = Path(tmp) / "model.o"
        cmd = [_compiler(cc), *flags, "-c", str(c_dir / "model.c"), "-o", str(obj)]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        if r.returncode:
            raise CCompileError(f"C export: {' '.join(cmd)} failed:\n{r.stderr[-4000:]}")
        out = subprocess.run([_compiler(size), str(obj)], capture_output=True, text=True).stdout
        text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
        stack = _stack_bytes(obj.with_suffix(".su"))
        header = (c_dir / "model.h").read_text()
        n_in = int(re.search(r"MODEL_N_CHANNELS (\d+)", header)[1]) * int(re.search(r"MODEL_N_TIMES (\d+)", header)[1])
        caller_input = 4 * n_in if "MODEL_DTYPE_FLOAT32" in header else 0  # int8: the input buffer is in .bss
        version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return {"target": target, "compiler": re.sub(r"\s+", " ", version).strip(), "flags": " ".join(flags),
            "code_and_constants_bytes": text, "data_bytes": data, "static_ram_bytes": bss, "stack_bytes": stack,
            "caller_input_bytes": caller_input,
            "flash_bytes": text + data, "ram_bytes": data + bss + stack + caller_input}
