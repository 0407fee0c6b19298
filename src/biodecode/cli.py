"""The ``biodecode`` command line: thin; it parses arguments and calls the library."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import yaml

from .errors import BiodecodeError, ConfigError

if TYPE_CHECKING:
    from .config import RunConfig

log = logging.getLogger("biodecode")


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _set_path(d: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    cur = d
    for k in keys[:-1]:
        if cur.get(k) is None:
            cur[k] = {}
        if not isinstance(cur[k], dict):
            raise ConfigError(f"--set {dotted}: {k!r} is not a section")
        cur = cur[k]
    cur[keys[-1]] = value


def _subjects(values: Sequence[str] | None) -> list[Any] | None:
    """``1 2 5-8`` -> [1, 2, 5, 6, 7, 8]; non-numeric ids (MIT-BIH records) and ids written with
    leading zeros (BIDS labels such as ``01``; ranges ``01-03`` keep the width) stay strings."""
    if not values:
        return None
    out: list[Any] = []
    for v in values:
        for part in str(v).split(","):
            if "-" in part and all(p.isdigit() for p in part.split("-", 1)):
                lo, hi = part.split("-", 1)
                width = len(lo) if lo.startswith("0") and len(lo) > 1 else 0
                out += [str(i).zfill(width) if width else i for i in range(int(lo), int(hi) + 1)]
            elif part.isdigit():
                out.append(part if part.startswith("0") and len(part) > 1 else int(part))
            elif part:
                out.append(part)
    return out


# ----------------------------------------------------------------------------- commands

def cmd_datasets(args: argparse.Namespace) -> int:
    from .datasets import get_dataset, list_datasets

    if args.action == "list":
        from .datasets import dataset_class

        for name in list_datasets():  # class attributes: a dataset that needs options (bids) is listed too
            cls = dataset_class(name)
            print(f"{name:16s} {cls.signal:4s} {cls.description}")
        return 0
    if not args.name:
        raise ConfigError(f"datasets {args.action}: name a dataset (one of {list_datasets()})")
    ds = get_dataset(args.name, path=args.data_dir)
    if args.action == "describe":
        print(yaml.safe_dump(ds.describe(), sort_keys=False))
        return 0
    from tqdm import tqdm

    subjects = _subjects(args.subjects) or ds.subjects()
    for s in tqdm(subjects, desc=f"download {args.name}", unit="subject"):
        ds.download([s], args.task)
    print(f"{args.name}: {len(subjects)} subject(s) present in {ds.root}")
    return 0


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SIZES = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _duration(text: str) -> float:
    """'30d', '12h', '90m', '2w' or seconds -> seconds."""
    t = text.strip().lower()
    try:
        return float(t[:-1]) * _UNITS[t[-1]] if t and t[-1] in _UNITS else float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30d, 12h, 90m)") from None


def _size(text: str) -> int:
    """'20G', '500M', '1.5T' or bytes -> bytes."""
    t = text.strip().upper().removesuffix("B")
    try:
        return int(float(t[:-1]) * _SIZES[t[-1]]) if t and t[-1] in _SIZES else int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 20G, 500M)") from None


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB"


def cmd_cache(args: argparse.Namespace) -> int:
    """The window store: what it holds, and pruning entries no request uses any more."""
    from .store import WindowStore

    store = WindowStore(args.cache_dir)
    if args.action == "info":
        entries = store.entries()
        print(f"window store {store.root}: {len(entries)} entries, {_mb(sum(e.bytes for e in entries))}")
        by: dict[str, list] = {}
        for e in entries:
            by.setdefault(e.dataset, []).append(e)
        for name, es in sorted(by.items()):
            age = (time.time() - max(e.last_used for e in es)) / 86400
            print(f"  {name:16s} {len(es):5d} entries  {sum(e.n_windows for e in es):8d} windows  "
                  f"{_mb(sum(e.bytes for e in es)):>12s}  last used {age:.1f} days ago")
        return 0
    if args.action == "prune" and args.older_than is None and args.max_size is None:
        raise ConfigError("cache prune: give --older-than (e.g. 30d), --max-size (e.g. 20G) or both")
    listing = store.entries()  # read once: what prune chooses from and what the summary counts
    if args.action == "clear":
        gone = store.prune(max_bytes=0, dry_run=args.dry_run, entries=listing)
    else:
        gone = store.prune(older_than_s=args.older_than, max_bytes=args.max_size, dry_run=args.dry_run,
                           entries=listing)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {len(gone)} entries ({_mb(sum(e.bytes for e in gone))}) from {store.root}; "
          f"{len(listing) - len(gone)} left")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .models import count_macs, count_parameters, create_model, describe_model, list_models

    rows = []
    for name in list_models():
        d = describe_model(name)
        try:
            m = create_model(name, args.n_channels, args.n_times, args.n_classes, sfreq=args.sfreq)
            params, macs = count_parameters(m), count_macs(m, args.n_channels, args.n_times)
        except ConfigError as exc:
            params, macs = None, None
            d["note"] = str(exc)
        rows.append((name, d["family"], d["paper"], params, macs, d["export"]))
    shape = f"{args.n_channels} x {args.n_times} at {args.sfreq:g} Hz, {args.n_classes} classes"
    if args.markdown:
        print(f"| model | family | paper | parameters | MACs ({shape}) | export |\n|---|---|---|---|---|---|")
        for name, fam, paper, p, m, exp in rows:
            ex = ", ".join(f"{k}: {v}" for k, v in exp.items())
            print(f"| `{name}` | {fam} | {paper} | {f'{p:,}' if p is not None else '-'} | "
                  f"{f'{m / 1e6:.1f} M' if m is not None else '-'} | {ex} |")
    else:
        print(f"input {shape}")
        for name, fam, _, p, m, _ in rows:
            size = f"{p:>10,} params  {m / 1e6:8.1f} M MACs" if p is not None else f"{'-':>10s}         does not fit"
            print(f"{name:12s} {fam:16s} {size}")
        from .baselines import BASELINES

        for name, (_, signal, ref) in sorted(BASELINES.items()):
            print(f"{name:12s} {'classical ' + signal:16s} {'-':>10s}         {ref}")
        skipped = [n for n, *_rest in rows if _rest[2] is None]
        if skipped:
            print(f"({', '.join(skipped)}: their default kernels and pools need longer windows than {args.n_times} "
                  f"samples; train them with smaller ones, e.g. --set model.kwargs.filter_length=5)")
    return 0


def _build_config(args: argparse.Namespace) -> "RunConfig":
    from .config import RunConfig

    base: dict[str, Any] = {}
    if args.config:  # as written: what it leaves unset, the flags below and the dataset's settings may fill
        base = RunConfig.read_yaml(args.config, check=True)
    for key, value in (("data.dataset", args.dataset), ("data.task", args.task),
                       ("data.subjects", _subjects(args.subjects)), ("data.data_dir", args.data_dir),
                       ("model.name", args.model), ("protocol.name", args.protocol), ("protocol.n_folds", args.folds),
                       ("train.max_epochs", args.epochs), ("train.batch_size", args.batch_size), ("train.lr", args.lr),
                       ("seed", args.seed), ("protocol.group_key", getattr(args, "group_key", None))):
        if value is not None:
            _set_path(base, key, value)
    for side in ("train", "val", "test"):  # named groups of a fixed split; "1-10" ranges as for --subjects
        names = _subjects(getattr(args, f"{side}_groups", None))
        if names is not None:
            _set_path(base, f"protocol.{side}_groups", [str(n) for n in names])
            if args.protocol is None and base.get("protocol", {}).get("name") in (None, "within-subject"):
                _set_path(base, "protocol.name", "fixed-split")
    prot = base.get("protocol", {})
    if (prot.get("name") == "fixed-split" and prot.get("group_key") in (None, "subject") and args.subjects is None
            and not base.get("data", {}).get("subjects")):  # the subjects the lists name, nothing else
        named = [g for side in ("train_groups", "val_groups", "test_groups") for g in prot.get(side) or []]
        if named:
            _set_path(base, "data.subjects", [int(g) if g.isdigit() else g for g in dict.fromkeys(named)])
    for item in args.set or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. train.lr=0.01 or model.kwargs.F1=4")
        k, v = item.split("=", 1)
        _set_path(base, k.strip(), _parse_value(v))
    if args.progress:
        _set_path(base, "train.progress_bar", True)
    config = RunConfig.from_dict(base)
    if config.from_dataset and not getattr(args, "quiet", False):
        print(f"{config.data.dataset}: recommended settings for what the config leaves unset: "
              f"{config.describe_recommended()} (--set defaults=plain for the plain defaults)", file=sys.stderr)
    return config


class _Bars:
    """The CLI's progress on standard error: on a terminal, tqdm bars for the recordings being
    windowed, the folds and the current fold's epochs; in a log (not a terminal), a plain line per
    fold and an epoch line at most every ``LOG_EVERY_S`` seconds. Nothing with ``--quiet``."""

    LOG_EVERY_S = 30.0

    def __init__(self, quiet: bool):
        from tqdm import tqdm

        self.tqdm, self.quiet, self.tty = tqdm, quiet, sys.stderr.isatty()
        self.data = self.folds = self.epochs = None
        self.last_line = 0.0

    def _bar(self, **kw):
        return self.tqdm(disable=self.quiet or not self.tty, dynamic_ncols=True, file=sys.stderr, **kw)

    def data_progress(self, unit: str, done: int, total: int) -> None:
        if not self.tty:
            if not self.quiet and (done == total or time.monotonic() - self.last_line > self.LOG_EVERY_S):
                self.last_line = time.monotonic()
                print(f"windows: {done}/{total} recordings ready (last: {unit})", file=sys.stderr, flush=True)
            return
        if self.data is None:
            self.data = self._bar(total=total, desc="windows", unit="recording")
        self.data.n = done
        self.data.set_postfix_str(unit, refresh=True)
        if done == total:
            self.data.close()

    def on_epoch(self, fold: int, n_folds: int, row: dict[str, float]) -> None:
        stats = {k: f"{row[k]:.3f}" for k in ("train_loss", "val_loss", "val_acc") if k in row}
        if not self.tty:
            if not self.quiet and time.monotonic() - self.last_line > self.LOG_EVERY_S:
                self.last_line = time.monotonic()
                print(f"fold {fold + 1}/{n_folds} epoch {int(row['epoch']) + 1}: "
                      + ", ".join(f"{k} {v}" for k, v in stats.items()), file=sys.stderr, flush=True)
            return
        if self.folds is None:
            self.folds = self._bar(total=n_folds, desc="folds", unit="fold", position=0)
        if self.epochs is None or self.epochs.desc != f"fold {fold + 1}/{n_folds}":
            if self.epochs is not None:
                self.epochs.close()
            self.epochs = self._bar(desc=f"fold {fold + 1}/{n_folds}", unit="epoch", leave=False, position=1)
        self.epochs.update(1)
        self.epochs.set_postfix(stats)

    def message(self, msg: str) -> None:
        if msg.startswith("fold ") and self.folds is not None:
            self.folds.update(1)
        if not self.quiet:
            self.tqdm.write(msg, file=sys.stderr)
            self.last_line = time.monotonic()

    def close(self) -> None:
        for bar in (self.epochs, self.folds, self.data):
            if bar is not None:
                bar.close()
        self.data = self.folds = self.epochs = None

    def __enter__(self) -> "_Bars":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _default_out(*parts: str) -> Path:
    """``runs/<parts joined by ->-<date>-<time>``."""
    return Path("runs") / "-".join([*parts, time.strftime("%Y%m%d-%H%M%S")])


def _run(config: "RunConfig", out: Path, quiet: bool, overwrite: bool) -> dict[str, Any]:
    """run_experiment with progress bars; a failure says where the run's files are."""
    from .runs import check_run_dir, is_rank_zero

    config.validate()  # names and values, before the training libraries are imported
    if is_rank_zero():  # under torchrun the other ranks write nowhere (run_experiment sees to it)
        check_run_dir(out, overwrite)
    from .experiment import run_experiment

    try:
        with _Bars(quiet) as bars:
            return run_experiment(config, out, progress=bars.message, data_progress=bars.data_progress,
                                  on_epoch=bars.on_epoch, overwrite=overwrite)
    except BaseException as exc:  # the bars are closed by now, so this line is not drawn over
        if (out / "status.json").is_file():
            print(f"biodecode: the run stopped; what it finished is in {out} (status.json says why)", file=sys.stderr)
        if isinstance(exc, KeyboardInterrupt):
            raise SystemExit(130) from None
        raise


def cmd_train(args: argparse.Namespace) -> int:
    config = _build_config(args)
    out = Path(args.out) if args.out else _default_out(config.data.dataset, config.data.task or "default",
                                                         config.model.name, config.protocol.name)
    report = _run(config, out, args.quiet, args.overwrite)
    acc = report["summary"].get("accuracy", {})
    print(f"{report['title']}: accuracy {acc.get('mean', float('nan')):.3f} ± {acc.get('std', float('nan')):.3f}"
          + ("  [SYNTHETIC DATA]" if report["synthetic"] else ""))
    per_record = report["summary"].get("per_record", {})
    if per_record:
        line = ", ".join(f"{label} {per_record[k]['mean']:.3f} ± {per_record[k]['std']:.3f}"
                         for k, label in (("accuracy", "accuracy"), ("challenge_f1", "challenge F1 (N, A, O)"))
                         if k in per_record)
        pooled = report["summary"].get("per_record_pooled", {})
        if "challenge_f1" in pooled:
            line += f"; over all {pooled['n_records']} test records pooled, challenge F1 {pooled['challenge_f1']:.3f}"
        print(f"per recording (windows' probabilities averaged): {line}")
    print(f"report: {out / 'metrics.md'}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation.report import name_list
    from .evaluation.saved import evaluate_model

    with _Bars(args.quiet) as bars:
        report = evaluate_model(args.checkpoint, _subjects(args.subjects), dataset=args.dataset, task=args.task,
                                data_dir=args.data_dir, out_dir=args.out, allow_fitted=args.allow_fitted,
                                progress=bars.data_progress)
    m = report["metrics"]
    print(f"accuracy {m['accuracy']:.3f}, balanced {m['balanced_accuracy']:.3f}, kappa {m['kappa']:.3f} on "
          f"{m['n']} windows of subject(s) {name_list(report['subjects'], sep=', ')}"
          + (f"  [OPTIMISTIC: {report['n_fitted_windows']} fitted windows]" if report["warning"] else ""))
    if "per_record" in m:
        r = m["per_record"]
        print(f"per recording ({r['n_records']} records, windows' probabilities averaged): accuracy {r['accuracy']:.3f}"
              + (f", challenge F1 (N, A, O) {r['challenge_f1']:.3f}" if "challenge_f1" in r else ""))
    print(f"report: {Path(report['out_dir']) / 'metrics.md'}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .evaluation.compare import compare_models

    args.model = args.model or args.models[0]
    config = _build_config(args)
    out = Path(args.out) if args.out else _default_out("compare", config.data.dataset, config.data.task or "default",
                                                         config.protocol.name)
    with _Bars(args.quiet) as bars:
        report = compare_models(config, args.models, out, seeds=args.seeds, overwrite=args.overwrite,
                                progress=bars.message, data_progress=bars.data_progress, on_epoch=bars.on_epoch)
    for m in report["models"]:
        s = report["summary"][m]
        print(f"{m:12s} {s['mean']:.3f} ± {s['sd']:.3f} over {len(report['subjects'])} subjects")
    print(f"report: {out / 'compare.md'}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Synthetic motor imagery, end to end, offline: windows, EEGNet, leave-one-subject-out."""
    from .config import RunConfig

    config = RunConfig.from_dict({
        "data": {"dataset": "synthetic-mi", "task": "left-right-imagery", "subjects": [1, 2, 3, 4],
                 "dataset_kwargs": {"n_channels": 22, "n_trials": 30}},
        "model": {"name": args.model},
        "protocol": {"name": "loso"},
        "train": {"max_epochs": args.epochs, "batch_size": 32, "lr": 3e-3, "patience": 10},
        "seed": 0,
    })
    print("biodecode demo: SYNTHETIC motor-imagery EEG (4 subjects, 22 channels, 160 Hz), "
          f"{args.model}, leave-one-subject-out")
    t0 = time.perf_counter()
    report = _run(config, Path(args.out), args.quiet, overwrite=True)  # the demo's own folder, rewritten each time
    acc = report["summary"]["accuracy"]
    print(f"demo done in {time.perf_counter() - t0:.0f} s: accuracy {acc['mean']:.3f} ± {acc['std']:.3f} "
          f"(chance 0.5) on SYNTHETIC data; report: {Path(args.out) / 'metrics.md'}")
    return 0


def _c_summary(c: dict) -> str:
    """One paragraph on the C export: where, how it was checked, flash and RAM."""
    lines = [f"C99 ({c['dtype']}): {c['path']}/model.c, model.h, main.c; arena {c['arena_bytes']} B"]
    if "not_checked" in c:
        lines.append(f"  not compiled or checked: {c['not_checked']}")
        return "\n".join(lines)
    if c["dtype"] == "float32":
        lines.append(f"  gcc build on {c['n_windows']} held-out windows: max |logit - PyTorch| {c['max_abs_diff_pytorch']:.2e}, "
                     f"accuracy {c['accuracy']:.3f}")
    else:
        vs = (f"same decision as the int8 ONNX model on {100 * c['decisions_equal_int8_onnx']:.1f}% (max |logit diff| "
              f"{c['max_abs_diff_int8_onnx']:.3f}), " if "decisions_equal_int8_onnx" in c else "")
        lines.append(f"  gcc build on {c['n_windows']} held-out windows: {vs}as PyTorch on "
                     f"{100 * c['decisions_equal_pytorch']:.1f}%, accuracy {c['accuracy']:.3f}")
    for key in ("sizes_host", "sizes_cortex_m4f"):
        if key in c:
            s = c[key]
            lines.append(f"  {s['target']} ({s['compiler']}, -Os): flash {s['flash_bytes'] / 1024:.1f} KiB, "
                         f"RAM {s['ram_bytes'] / 1024:.1f} KiB (stack {s['stack_bytes']} B)")
    return "\n".join(lines)


def cmd_export(args: argparse.Namespace) -> int:
    from .deploy.export_run import export_run

    report = export_run(args.run_dir, tuple(args.format), quantize=not args.no_quantize, out_dir=args.out,
                        c_dtype=args.c_dtype)
    if "onnx" in report:
        o = report["onnx"]
        print(f"ONNX: {o['path']} ({o['bytes'] / 1024:.1f} KiB), parity max |diff| {o['max_abs_diff']:.2e} on "
              f"{o['n_windows']} held-out windows, accuracy {o['accuracy']:.3f}")
    if "int8" in report:
        q = report["int8"]
        print(f"int8: {q['path']} ({q['bytes'] / 1024:.1f} KiB), accuracy {q['accuracy']:.3f} "
              f"({q['accuracy_change']:+.3f} vs float32), latency {q['latency_ms_batch1']:.2f} ms vs "
              f"{report['onnx']['latency_ms_batch1']:.2f} ms (batch 1)")
    if "pt2" in report:
        print(f"torch.export: {report['pt2']['path']}, parity max |diff| {report['pt2']['max_abs_diff']:.2e}")
    if "c" in report:
        print(_c_summary(report["c"]))
    print(f"model card: {Path(report['card_path'])}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from .evaluation.explain import explain_run

    report = explain_run(args.run_dir, args.method, args.windows, args.out)
    print(f"{report['method']} on {report['n_windows']} held-out windows of {report['fold']}")
    for cls, imp in report["channel_importance"].items():
        top = sorted(imp, key=imp.get, reverse=True)[:5]
        print(f"  {cls}: strongest channels {', '.join(top)}")
    print(f"figures: {', '.join(report['figures'])}")
    return 0


def cmd_stream(args: argparse.Namespace) -> int:
    from .deploy.predictor import load_predictor
    from .deploy.stream import StreamDecoder, load_replay, lsl_decisions, replay

    dec = StreamDecoder(load_predictor(args.model), hop_s=args.hop)
    if args.lsl:
        decisions = lsl_decisions(dec, args.lsl, max_seconds=args.max_seconds)
    else:
        data = load_replay(args.replay, dec, args.max_seconds)
        if args.calibrate_s:
            dec.calibrate(data[:, :int(round(args.calibrate_s * dec.sfreq))])
        decisions = replay(dec, data, args.chunk, realtime=args.realtime)
    for d in decisions:
        probs = " ".join(f"{c}={p:.2f}" for c, p in zip(dec.classes, d.proba))
        print(f"t={d.time:8.3f}s  {d.label:>12s}  {probs}  latency {d.latency_s * 1e3:.2f} ms"
              + (f"  ({d.filled} filled samples)" if d.filled else ""), flush=True)
    print(json.dumps(dec.stats.summary()))
    return 0


def cmd_bench_latency(args: argparse.Namespace) -> int:
    from .deploy.latency import CALIBRATE_S, bench_latency, machine

    rows = bench_latency(args.target, seconds=args.seconds, chunk_size=args.chunk, hop_s=args.hop, threads=args.threads)
    if not rows:
        raise ConfigError(f"{args.target}: no model.pt / export/model.onnx found")
    print(f"machine: {machine()}; {args.threads} thread(s); chunks of {args.chunk} samples; decision every {args.hop} s"
          + (f"; aligned model: calibrated on {CALIBRATE_S:g} s of the replayed signal, every decision includes the alignment"
             if any(r.get("aligned") for r in rows) else ""))
    print("| backend | decisions | p50 (ms) | p99 (ms) |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['decisions']} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} |")
    return 0


# ----------------------------------------------------------------------------- parser

def _positive(kind: type):
    """An argparse type: a number of ``kind`` that is > 0 (and finite)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {'integer' if kind is int else 'number'}, "
                                             f"got {text!r}") from None
        if not (value > 0 and value != float("inf")):
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    parse.__name__ = f"positive {kind.__name__}"
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="biodecode", description="Deep learning for EEG, ECG and EMG classification.")
    p.add_argument("-v", "--verbose", action="store_true", help="log INFO messages")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or per-fold lines; results only")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("datasets", help="list, describe or download datasets")
    d.add_argument("action", choices=["list", "describe", "download"])
    d.add_argument("name", nargs="?")
    d.add_argument("--subjects", nargs="+")
    d.add_argument("--task")
    d.add_argument("--data-dir", help="data root (default: $BIODECODE_DATA_DIR or the user cache)")
    d.set_defaults(func=cmd_datasets)

    k = sub.add_parser("cache", help="the window store: what it holds (info); remove entries not used lately (prune) "
                                     "or all of them (clear)")
    k.add_argument("action", choices=["info", "prune", "clear"])
    k.add_argument("--cache-dir", help="the store (default: $BIODECODE_CACHE_DIR or ~/.cache/biodecode/windows)")
    k.add_argument("--older-than", type=_duration, help="prune: entries no request used for this long, e.g. 30d")
    k.add_argument("--max-size", type=_size, help="prune: then least recently used ones until the store is this small, "
                                                  "e.g. 20G")
    k.add_argument("--dry-run", action="store_true", help="say what would be removed; remove nothing")
    k.set_defaults(func=cmd_cache)

    m = sub.add_parser("models", help="list models with parameter and MAC counts")
    m.add_argument("--n-channels", type=_positive(int), default=64)
    m.add_argument("--n-times", type=_positive(int), default=480)
    m.add_argument("--n-classes", type=_positive(int), default=2)
    m.add_argument("--sfreq", type=_positive(float), default=160.0)
    m.add_argument("--markdown", action="store_true")
    m.set_defaults(func=cmd_models)

    t = sub.add_parser("train", help="train and evaluate under a protocol; writes a report folder")
    t.add_argument("--config", help="YAML run config (flags below override it)")
    t.add_argument("--dataset")
    t.add_argument("--task")
    t.add_argument("--subjects", nargs="+", help="e.g. 1 2 3 or 1-10")
    t.add_argument("--model")
    t.add_argument("--protocol", help="within-subject, cross-subject, loso, cross-session, cross-run, fixed-split, "
                                      "inter-patient, intra-patient (see docs/protocols.md)")
    t.add_argument("--train-groups", nargs="+", metavar="NAME", help="fixed-split: the groups to train on, e.g. 1-10")
    t.add_argument("--val-groups", nargs="+", metavar="NAME",
                   help="fixed-split: groups for validation / early stopping (default: held out of the training groups)")
    t.add_argument("--test-groups", nargs="+", metavar="NAME", help="fixed-split: the groups to test on, e.g. 11-14")
    t.add_argument("--group-key", choices=["subject", "record", "session", "run"],
                   help="fixed-split: what the group names name (default subject; record for inter-patient)")
    t.add_argument("--folds", type=_positive(int))
    t.add_argument("--epochs", type=_positive(int))
    t.add_argument("--batch-size", type=_positive(int))
    t.add_argument("--lr", type=_positive(float))
    t.add_argument("--seed", type=int)
    t.add_argument("--data-dir")
    t.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="any config value, e.g. --set train.patience=30 --set model.kwargs.F1=4")
    t.add_argument("--out", help="report folder (default runs/<dataset>-<task>-<model>-<protocol>-<time>)")
    t.add_argument("--overwrite", action="store_true", help="replace the run already in --out (refused otherwise)")
    t.add_argument("--progress", action="store_true", help="also show Lightning's per-batch progress bar")
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("compare", help="several models (networks and baselines) under one protocol and several seeds: "
                                       "per-subject scores, paired tests, plots")
    c.add_argument("--models", nargs="+", required=True, help="e.g. eegnet ts-lr csp-lda (the first is the reference)")
    c.add_argument("--seeds", nargs="+", type=int, default=[0])
    for flag in ("--config", "--dataset", "--task", "--protocol", "--data-dir"):
        c.add_argument(flag)
    c.add_argument("--subjects", nargs="+", help="e.g. 1-14, or local")
    c.add_argument("--folds", type=_positive(int))
    c.add_argument("--epochs", type=_positive(int))
    c.add_argument("--batch-size", type=_positive(int))
    c.add_argument("--lr", type=_positive(float))
    c.add_argument("--set", action="append", metavar="KEY=VALUE", help="any config value, as for train")
    c.add_argument("--out", help="folder (default runs/compare-<dataset>-<task>-<protocol>-<time>)")
    c.add_argument("--overwrite", action="store_true")
    c.set_defaults(func=cmd_compare, model=None, seed=None, progress=False)

    e = sub.add_parser("evaluate", help="evaluate a trained model file on data")
    e.add_argument("checkpoint", help="model.pt from a run folder")
    e.add_argument("--dataset")
    e.add_argument("--task")
    e.add_argument("--subjects", nargs="+")
    e.add_argument("--data-dir")
    e.add_argument("--out", help="report folder (default: evaluate/ beside the model file)")
    e.add_argument("--allow-fitted", action="store_true",
                   help="score windows the model was fitted on anyway (refused otherwise); the report says so")
    e.set_defaults(func=cmd_evaluate)

    x = sub.add_parser("export", help="export a run's model (ONNX, int8 ONNX, torch.export, C99) with parity checks and a model card")
    x.add_argument("run_dir")
    x.add_argument("--format", nargs="+", default=["onnx"], choices=["onnx", "pt2", "c"],
                   help="onnx (with an int8 model unless --no-quantize), pt2 (a torch.export program) and/or c "
                        "(C99 source for microcontrollers in RUN_DIR/export/c, checked with gcc when installed)")
    x.add_argument("--c-dtype", choices=["int8", "float32"], default="int8",
                   help="C export: int8 kernels (default) or float32 (for parts with an FPU)")
    x.add_argument("--no-quantize", action="store_true", help="skip the int8 model")
    x.add_argument("--out", help="folder (default RUN_DIR/export)")
    x.set_defaults(func=cmd_export)

    ex = sub.add_parser("explain", help="what a trained network looks at: per-class attribution over channels and time "
                                        "(scalp topographies for EEG), written into RUN_DIR/explain")
    ex.add_argument("run_dir")
    ex.add_argument("--method", choices=["integrated-gradients", "saliency"], default="integrated-gradients")
    ex.add_argument("--windows", type=_positive(int), default=256, help="held-out windows to explain (default 256)")
    ex.add_argument("--out", help="folder (default RUN_DIR/explain)")
    ex.set_defaults(func=cmd_explain)

    st = sub.add_parser("stream", help="decode a live LSL stream or a replayed recording")
    st.add_argument("--model", required=True, help="model.onnx, model.int8.onnx, model.pt2 or model.pt")
    src = st.add_mutually_exclusive_group(required=True)
    src.add_argument("--lsl", metavar="NAME", help="LSL stream name")
    src.add_argument("--replay", metavar="FILE", help="a recording file to replay")
    st.add_argument("--hop", type=_positive(float), default=0.25, help="seconds between decisions")
    st.add_argument("--chunk", type=_positive(int), default=8, help="samples per chunk when replaying")
    st.add_argument("--realtime", action="store_true", help="replay at the recording's rate (default: as fast as possible)")
    st.add_argument("--max-seconds", type=_positive(float), help="stop after this many seconds of signal")
    st.add_argument("--calibrate-s", type=_positive(float),
                    help="for models trained with data.alignment=euclidean or riemannian: align with the first this many seconds")
    st.set_defaults(func=cmd_stream)

    bl = sub.add_parser("bench-latency", help="p50/p99 decision latency: PyTorch eager, ONNX Runtime float32 and int8")
    bl.add_argument("target", help="a run folder (after `biodecode export`) or a model file")
    bl.add_argument("--seconds", type=_positive(float), default=60.0)
    bl.add_argument("--chunk", type=_positive(int), default=8)
    bl.add_argument("--hop", type=_positive(float), default=0.25)
    bl.add_argument("--threads", type=_positive(int), default=1)
    bl.set_defaults(func=cmd_bench_latency)

    demo = sub.add_parser("demo", help="end-to-end run on built-in SYNTHETIC data (no download)")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--model", default="eegnet")
    demo.add_argument("--epochs", type=_positive(int), default=40)
    demo.set_defaults(func=cmd_demo)
    for name in ("train", "compare", "evaluate", "demo"):  # also after the command: biodecode train ... -q
        sub.choices[name].add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                                       help="no progress bars or per-fold lines; results only")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        from .runs import is_rank_zero

        if args.command in ("train", "compare") and not is_rank_zero():
            # torchrun / Lightning DDP: every rank trains; rank 0 alone draws bars and prints results
            args.quiet = True
            with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
                return int(args.func(args) or 0)
        return int(args.func(args) or 0)
    except (BiodecodeError, FileNotFoundError) as exc:
        print(f"biodecode {args.command}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        _end_process_group()


def _end_process_group() -> None:
    """Destroy the process group a DDP run started (Lightning leaves it open): a rank that exits
    with it still up can abort in the backend's destructor ("terminate called without an active
    exception") after its work is done. Commands that never imported torch do not import it here."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
