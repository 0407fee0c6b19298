"""The C export on a Cortex-M4F: flash and RAM from arm-none-eabi-size, and instructions per decision
counted bare-metal under qemu-system-arm (mps2-an386, semihosting).

For each model: EEGNet's batch norms are fitted on real PhysioNet MI windows (64 x 480 at 160 Hz)
when ``BIODECODE_DATA_DIR`` has them (else Gaussian noise), int8 calibrated on 32 of them; one more
window is built into the firmware, run once to warm up and once under the cycle counter, and its
logits are compared with the same C compiled for this machine (they must be equal: the int8 kernels
are integer arithmetic up to the final float scaling).

Instructions: qemu runs with ``-icount shift=0`` (one instruction = 1 ns of virtual time) and the
firmware reads SysTick, which counts the 25 MHz system clock of the AN386 image: one tick = 40
instructions, so the count is good to +-40. Needs Debian's gcc-arm-none-eabi,
libnewlib-arm-none-eabi and qemu-system-arm; skips with a message when they are missing.

    BIODECODE_DATA_DIR=../shared/data python -m benchmarks.c_mcu
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from biodecode.deploy.c_export import CORTEX_M4F, c_sizes, compile_c, export_c, run_c
from biodecode.deploy.cgen import CSource
from biodecode.models import create_model

_LINKER = """
MEMORY { FLASH (rx) : ORIGIN = 0x00000000, LENGTH = 4M
         RAM (rwx)  : ORIGIN = 0x20000000, LENGTH = 4M }
ENTRY(Reset_Handler)
SECTIONS {
  .text : { KEEP(*(.vectors)) *(.text*) KEEP(*(.init)) KEEP(*(.fini)) *(.rodata*) . = ALIGN(4); } > FLASH
  .ARM.exidx : { *(.ARM.exidx*) } > FLASH
  .preinit_array : { PROVIDE_HIDDEN(__preinit_array_start = .); KEEP(*(.preinit_array*)); PROVIDE_HIDDEN(__preinit_array_end = .); } > FLASH
  .init_array : { PROVIDE_HIDDEN(__init_array_start = .); KEEP(*(SORT(.init_array.*))) KEEP(*(.init_array*)); PROVIDE_HIDDEN(__init_array_end = .); } > FLASH
  .fini_array : { PROVIDE_HIDDEN(__fini_array_start = .); KEEP(*(.fini_array*)); PROVIDE_HIDDEN(__fini_array_end = .); } > FLASH
  .data : { *(.data*) . = ALIGN(4); } > RAM
  .bss : { __bss_start__ = .; *(.bss*) *(COMMON) . = ALIGN(4); __bss_end__ = .; } > RAM
  end = .; _end = .; __end__ = .;
  __stack = ORIGIN(RAM) + LENGTH(RAM);
}
"""

_FIRMWARE = r"""
#include <stdint.h>
#include <stdio.h>
#include "model.h"

extern const int8_t window_q[MODEL_N_CHANNELS * MODEL_N_TIMES];
extern void _start(void);
extern uint32_t __stack;

#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)
static volatile uint32_t wraps;

void SysTick_Handler(void) { wraps++; }

void Reset_Handler(void) {
  *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20; /* the FPU, before any float instruction */
  __asm volatile("dsb\n isb");
  _start();
}

__attribute__((section(".vectors"), used)) static const void *vectors[16] = {
  &__stack, (void *)Reset_Handler, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (void *)SysTick_Handler};

static uint64_t ticks(void) {
  uint32_t w, c;
  do { w = wraps; c = SYST_CVR; } while (w != wraps);
  return (uint64_t)w * 0x1000000u + (0xFFFFFFu - c);
}

int main(void) {
  float logits[MODEL_N_CLASSES];
  uint64_t t0, t1;
  int i;
  SYST_RVR = 0xFFFFFF;
  SYST_CVR = 0;
  SYST_CSR = 7; /* processor clock, interrupt, enable */
  model_predict_int8(window_q, logits);
  t0 = ticks();
  model_predict_int8(window_q, logits);
  t1 = ticks();
  printf("ticks %lu\n", (unsigned long)(t1 - t0));
  for (i = 0; i < MODEL_N_CLASSES; i++) printf("logit %.9g\n", (double)logits[i]);
  return 0;
}
"""

_HOST = r"""
#include <stdint.h>
#include <stdio.h>
#include "model.h"
extern const int8_t window_q[MODEL_N_CHANNELS * MODEL_N_TIMES];
int main(void) {
  float logits[MODEL_N_CLASSES];
  int i;
  model_predict_int8(window_q, logits);
  for (i = 0; i < MODEL_N_CLASSES; i++) printf("logit %.9g\n", (double)logits[i]);
  return 0;
}
"""

CASES = [  # (label, registry name, channels, samples, sfreq, kwargs)
    ("EEGNet-8,2", "eegnet-8,2", 64, 480, 160.0, {}),
    ("EEGNet-4,2", "eegnet-4,2", 64, 480, 160.0, {}),
    ("EEG-TCNet", "eegtcnet", 64, 480, 160.0, {}),
    ("ShallowConvNet", "shallow", 64, 480, 160.0, {"pool_length": 75, "pool_stride": 15}),
    ("ResNet1d (ECG, widths 8-16-16-16)", "resnet1d", 1, 256, 360.0, {"widths": (8, 16, 16, 16)}),
]


def _windows(c: int, t: int) -> np.ndarray:
    """Real PhysioNet MI windows for 64 x 480 when the data folder has them, else noise."""
    if (c, t) == (64, 480):
        try:
            from biodecode.loading import load_windows

            return np.asarray(load_windows("physionet-mi", [1], task="left-right-imagery").X[:40], np.float32)
        except Exception as exc:  # no data folder: sizes do not depend on the values
            print(f"  (no real windows: {exc.__class__.__name__}; Gaussian noise instead)")
    return (np.random.default_rng(0).standard_normal((40, c, t)) * 20).astype(np.float32)


def _model(name: str, c: int, t: int, sfreq: float, kwargs: dict, X: np.ndarray) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model(name, c, t, 2, sfreq=sfreq, **kwargs).train()
    with torch.no_grad():
        model(torch.from_numpy(X[:32]))  # batch-norm statistics of real windows
    return model.eval()


def _window_c(src: CSource, x: np.ndarray) -> str:
    q = np.clip(np.round(x / src.input_qparams.scale) + src.input_qparams.zero_point, -128, 127).astype(int).ravel()
    body = ",\n".join(", ".join(map(str, q[i:i + 32])) for i in range(0, len(q), 32))
    return f'#include <stdint.h>\n#include "model.h"\nconst int8_t window_q[{len(q)}] = {{\n{body}\n}};\n'


def _qemu(work: Path, src: CSource, x: np.ndarray) -> tuple[int | None, str]:
    (work / "window.c").write_text(_window_c(src, x))
    (work / "fw.c").write_text(_FIRMWARE)
    (work / "host.c").write_text(_HOST)
    (work / "link.ld").write_text(_LINKER)
    elf = work / "fw.elf"
    cc = ["arm-none-eabi-gcc", *CORTEX_M4F, "-Os", "-std=c99", "-ffunction-sections", "-fdata-sections",
          "--specs=rdimon.specs", "-T", str(work / "link.ld"), "-Wl,--gc-sections"]
    r = subprocess.run([*cc, "fw.c", "window.c", "model.c", "-lm", "-o", str(elf)], cwd=work,
                       capture_output=True, text=True)
    if r.returncode:
        return None, f"firmware build failed: {r.stderr[-800:]}"
    host = subprocess.run(["gcc", "-std=c99", "-O2", "host.c", "window.c", "model.c", "-lm", "-o", "host"], cwd=work,
                          capture_output=True, text=True)
    try:
        run = subprocess.run(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-semihosting", "-icount", "shift=0",
                              "-kernel", str(elf)], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return None, "qemu did not finish in 10 minutes"
    m = re.search(r"ticks (\d+)", run.stdout)
    if not m:
        return None, f"qemu printed no count: {run.stdout[-300:]} {run.stderr[-300:]}"
    mcu_logits = re.findall(r"logit (\S+)", run.stdout)
    host_logits = re.findall(r"logit (\S+)", subprocess.run([str(work / "host")], capture_output=True, text=True).stdout) \
        if host.returncode == 0 else []
    same = "same logits as the x86-64 build" if mcu_logits == host_logits else f"logits {mcu_logits} vs x86-64 {host_logits}"
    return int(m.group(1)) * 40, same


def main(out=print) -> None:
    missing = [t for t in ("arm-none-eabi-gcc", "arm-none-eabi-size", "gcc") if shutil.which(t) is None]
    if missing:
        out(f"c_mcu: skipped: {', '.join(missing)} not installed (Debian: apt install gcc-arm-none-eabi "
              f"libnewlib-arm-none-eabi qemu-system-arm)")
        return
    has_qemu = shutil.which("qemu-system-arm") is not None
    out("C export on a Cortex-M4F (arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -Os); model.o sizes; "
          "RAM = static RAM (arena + int8 input) + stack")
    out("| model | input | C | flash (code + constants) | RAM (arena + input + stack) | instructions / decision (qemu) |")
    out("|---|---|---|---|---|---|")
    for label, name, c, t, sfreq, kwargs in CASES:
        X = _windows(c, t)
        model = _model(name, c, t, sfreq, kwargs, X)
        for dtype in ("int8", "float32"):
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                src = export_c(model, work, X[:32] if dtype == "int8" else None, dtype)
                host_exe = compile_c(work, work / "check")
                run_c(host_exe, X[32:34], 2)  # builds and runs on this machine too
                s = c_sizes(work, "cortex-m4f")
                insn, note = (None, "int8 only")
                if dtype == "int8":
                    insn, note = _qemu(work, src, X[33]) if has_qemu else (None, "qemu-system-arm not installed")
                ram = f"{s['ram_bytes'] / 1024:.1f} KiB ({src.arena_bytes} + {src.input_bytes} + {s['stack_bytes']} B)"
                if dtype == "float32":
                    ram = (f"{s['ram_bytes'] / 1024:.1f} KiB ({src.arena_bytes} + {s['caller_input_bytes']} + "
                           f"{s['stack_bytes']} B)")
                count = f"{insn / 1e6:.2f} M ({note})" if insn else note
                out(f"| {label} | {c} x {t} | {dtype} | {s['flash_bytes'] / 1024:.1f} KiB | {ram} | {count} |")


if __name__ == "__main__":
    main(lambda line: print(line, flush=True))
