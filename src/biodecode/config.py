"""A run, fully described as data: what data, which model, how to train, which protocol, which seed.

The CLI writes the resolved config next to the results, and ``biodecode train --config
that/config.yaml`` runs the same thing again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .spec import WindowSpec
from .training.config import TrainConfig, check_fields, check_type, dataclass_from_dict


@dataclass
class DataConfig:
    """dataset/subjects/task: what to load; tmin/tmax (s): event windows; window_s/stride_s (s):
    sliding windows; preprocessing: pipeline steps (``None`` = the dataset's default);
    data_dir: data root (default ``$BIODECODE_DATA_DIR`` or the user cache); metadata_channels:
    window metadata columns appended as constant channels (e.g. ``[rr_pre_s, rr_post_s, rr_local_s]``
    for MIT-BIH beats; such models cannot be streamed, the decoder has no metadata); alignment:
    ``"euclidean"`` or ``"riemannian"`` aligns each ``alignment_by`` group (default each subject; e.g.
    ``[subject, session]`` across days) by its own arithmetic or Riemannian mean covariance
    (:mod:`biodecode.alignment`; Riemannian = re-centring), ``"median"`` subtracts each group's
    median window (event-locked windows such as ECG beats), ``"median-append"`` adds the centred
    channels beside the raw ones, or ``"none"``."""

    dataset: str = "synthetic-mi"
    subjects: list[Any] | None = None
    task: str | None = None
    tmin: float | None = None
    tmax: float | None = None
    window_s: float | None = None
    stride_s: float | None = None
    preprocessing: list[dict[str, Any]] | None = None
    data_dir: str | None = None
    cache_dir: str | None = None
    dataset_kwargs: dict[str, Any] = field(default_factory=dict)
    metadata_channels: list[str] = field(default_factory=list)
    alignment: str = "none"
    alignment_by: list[str] = field(default_factory=lambda: ["subject"])

    def __post_init__(self) -> None:
        check_fields(self, "data")
        from .alignment import check_alignment

        check_alignment(self.alignment)
        for name in ("window_s", "stride_s"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ConfigError(f"data.{name} must be positive, got {getattr(self, name)}")
        if self.tmin is not None and self.tmax is not None and self.tmax <= self.tmin:
            raise ConfigError(f"data.tmax ({self.tmax}) must be after data.tmin ({self.tmin})")

    def window_spec(self) -> WindowSpec:
        """The window parameters of this config as the one :class:`WindowSpec`."""
        return WindowSpec(**{f.name: getattr(self, f.name) for f in fields(WindowSpec)})


@dataclass
class ModelConfig:
    name: str = "eegnet"
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_fields(self, "model")


@dataclass
class ProtocolConfig:
    """name: one of ``biodecode.evaluation.PROTOCOLS``; n_folds for k-fold protocols;
    train_groups/val_groups/test_groups and group_key (subject, record, session or run) for the fixed
    splits (``fixed-split``; ``inter-patient``, keyed by record, takes the dataset's standard lists
    when none are given). Without val_groups, validation is held out of the training groups.
    score_where: ``{metadata column: value or list of values}``; the folds are made on the windows
    that match, which alone are validated and tested; training also reads its subjects' other
    windows outside the held-out groups (e.g. PhysioNet MI's ``left-right`` task with
    ``{condition: imagined}``: train on real and imagined movement, score imagery)."""

    name: str = "within-subject"
    n_folds: int = 5
    train_groups: list[str] | None = None
    test_groups: list[str] | None = None
    val_groups: list[str] | None = None
    group_key: str | None = None
    score_where: dict[str, Any] | None = None  # normalised to {column: [values as text]}

    def __post_init__(self) -> None:
        check_fields(self, "protocol")
        if self.score_where is not None:  # a mapping already (check_fields)
            if not self.score_where:
                raise ConfigError(f"protocol.score_where must map metadata columns to values, e.g. "
                                  f"{{condition: imagined}}, got {self.score_where!r}")
            self.score_where = {str(c): [str(v) for v in (vals if isinstance(vals, (list, tuple)) else [vals])]
                                for c, vals in self.score_where.items()}
        if self.n_folds < 2:
            raise ConfigError(f"protocol.n_folds must be at least 2, got {self.n_folds}")
        for side in ("train_groups", "test_groups", "val_groups"):
            groups = getattr(self, side)
            if groups is not None:  # YAML and the CLI may give numbers: group names are strings
                setattr(self, side, [str(g) for g in groups])
        if self.group_key is not None and self.group_key not in GROUP_KEYS:
            raise ConfigError(f"protocol.group_key must be one of {', '.join(GROUP_KEYS)}, got {self.group_key!r}")


#: What a fixed split can name: the grouping columns every WindowSet carries.
GROUP_KEYS = ("subject", "record", "session", "run")


#: ``defaults``: ``"dataset"`` fills what a config leaves unset from its dataset's recommended
#: settings (:func:`apply_recommended`); ``"plain"`` leaves the dataclasses' own defaults.
DEFAULTS_MODES = ("dataset", "plain")


_EVENT, _SLIDING = ("tmin", "tmax"), ("window_s", "stride_s")


def apply_recommended(d: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The raw config mapping ``d`` with the options it leaves out taken from its dataset's
    recommended settings for its task (``Dataset.recommended``), and the dotted names of the
    options so filled. An option given as null keeps its plain default, and a config a run wrote
    (every option spelled out) gets nothing, so it reruns as it ran. ``model.name`` comes with its
    ``kwargs``; a model named in ``d`` takes the recommended ``kwargs`` only if it is the
    recommended model and ``d`` gives none; the settings recommended for the run's model
    (``Dataset.recommended_for_model``) come on top. A config that defines its windows (event
    ``tmin``/``tmax`` or sliding ``window_s``/``stride_s``) takes no window option of the other
    kind. An unknown dataset gets nothing here (:meth:`RunConfig.validate` names it)."""
    from .datasets import dataset_class

    data = d.get("data") or {}
    name = data.get("dataset") or DataConfig.dataset
    try:
        rec = dataset_class(name).recommended_settings(data.get("task"), (d.get("model") or {}).get("name"))
    except ConfigError:
        return d, []
    # windows the config defines one way (event or sliding) take nothing of the other way
    sliding, event = (any(data.get(k) is not None for k in keys) for keys in (_SLIDING, _EVENT))
    if sliding or event:
        other = _EVENT if sliding else _SLIDING
        rec["data"] = {k: v for k, v in rec.get("data", {}).items() if k not in other}
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}
    filled: list[str] = []
    for section, values in rec.items():
        mine = out[section] = out.get(section) or {}
        if section == "model":
            if "name" not in mine:
                mine.update(values)
                filled += [f"model.{k}" for k in values]
            elif mine["name"] == values.get("name") and "kwargs" not in mine and "kwargs" in values:
                mine["kwargs"] = values["kwargs"]
                filled.append("model.kwargs")
            continue
        for key, value in values.items():
            if key not in mine:
                mine[key] = value
                filled.append(f"{section}.{key}")
    return out, filled


def _short(value: Any) -> str:
    """A config value as one short line of text (a preprocessing step list as its step names and
    parameters)."""
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        from .preprocessing import describe_step

        return " + ".join(describe_step(v) for v in value)
    return str(value)


@dataclass
class RunConfig:
    """data, model, train, protocol and seed of one run. ``defaults`` says where unset options
    came from (``"dataset"``: the dataset's recommended settings, see :func:`apply_recommended`,
    which :meth:`from_dict`, YAML files and the CLI apply; ``"plain"``: the dataclasses' defaults,
    which constructing the dataclasses directly gives); ``from_dataset`` names the options filled
    that way."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    seed: int = 0
    defaults: str = "plain"
    from_dataset: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.seed = check_type(self.seed, int, "seed")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be in 0..2**32-1, got {self.seed}")
        self.defaults = check_type(self.defaults, str, "defaults")
        if self.defaults not in DEFAULTS_MODES:
            raise ConfigError(f"defaults must be one of {', '.join(DEFAULTS_MODES)}, got {self.defaults!r}")
        self.from_dataset = check_type(self.from_dataset, list[str], "from_dataset")
        self.train.seed = self.seed  # one seed, set in one place
        for dotted in self.from_dataset:
            self._option(dotted)

    def _option(self, dotted: str) -> Any:
        """The value of option ``dotted`` (e.g. ``"train.max_epochs"``); a ConfigError if there is none."""
        section, _, key = dotted.partition(".")
        values = getattr(self, section, None)
        if section not in ("data", "model", "train", "protocol") or key not in {f.name for f in fields(values)}:
            raise ConfigError(f"from_dataset: {dotted!r} is not an option of the run config")
        return getattr(values, key)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "RunConfig":
        """A config from a mapping (a YAML file's sections); with ``defaults: dataset`` (the default
        here) the options it leaves unset come from its dataset's recommended settings."""
        d = dict(d or {})
        known = {"data", "model", "train", "protocol", "seed", "defaults", "from_dataset"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"config: unknown section(s) {unknown}; known: {sorted(known)}")
        for key in ("data", "model", "train", "protocol"):
            if d.get(key) is not None and not isinstance(d[key], dict):
                raise ConfigError(f"config: section {key!r} must be a mapping, got {type(d[key]).__name__}")
        mode = d.get("defaults", "dataset")
        filled = list(d.get("from_dataset") or [])
        if mode == "dataset":
            d, new = apply_recommended(d)
            filled += [k for k in new if k not in filled]
        train = dict(d.get("train") or {})
        train.pop("seed", None)
        return cls(
            data=dataclass_from_dict(DataConfig, d.get("data"), "data"),
            model=dataclass_from_dict(ModelConfig, d.get("model"), "model"),
            train=TrainConfig.from_dict(train),
            protocol=dataclass_from_dict(ProtocolConfig, d.get("protocol"), "protocol"),
            seed=d.get("seed", 0),
            defaults=mode,
            from_dataset=filled,
        )

    @classmethod
    def read_yaml(cls, path: str | Path, check: bool = False) -> dict[str, Any]:
        """The mapping a YAML config file holds, as written (nothing filled in; a missing file, bad
        YAML or a non-mapping is an error naming the file). ``check``: also build a config from it,
        so a bad option is an error naming the file too (for callers that merge more options in
        before building their own)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such config file")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if data is not None and not isinstance(data, dict):
            raise ConfigError(f"{path}: a config must be a mapping of sections, got {type(data).__name__}")
        if check:
            cls._from_file(data or {}, path)
        return data or {}

    @classmethod
    def _from_file(cls, data: dict[str, Any], path: str | Path) -> "RunConfig":
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> "RunConfig":
        return cls._from_file(cls.read_yaml(path), path)

    def validate(self) -> "RunConfig":
        """Check names (dataset, task, model and its options, protocol) before any work starts."""
        from .baselines import check_baseline, is_baseline, list_baselines
        from .datasets import get_dataset
        from .evaluation import PROTOCOLS
        from .models import list_models, model_defaults

        ds = get_dataset(self.data.dataset, path=self.data.data_dir, **self.data.dataset_kwargs)
        ds.task(self.data.task)
        if is_baseline(self.model.name):  # names, options and needed inputs, before any data
            check_baseline(self.model.name, self.model.kwargs, self.data.metadata_channels)
        elif self.model.name not in list_models():
            raise ConfigError(f"unknown model {self.model.name!r}; networks: {', '.join(list_models())}; classical "
                              f"baselines: {', '.join(list_baselines())}")
        else:
            allowed = model_defaults(self.model.name)
            unknown = sorted(set(self.model.kwargs) - set(allowed))
            if unknown:
                raise ConfigError(f"model {self.model.name!r} has no parameter(s) {unknown}; it takes {sorted(allowed)}")
        if self.protocol.name not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {self.protocol.name!r}; available: {sorted(PROTOCOLS)}")
        d = self.data
        given = [k for k in (*_EVENT, "window_s") if getattr(d, k) is not None
                 and f"data.{k}" not in self.from_dataset]  # a recommended window names no windows of the user's
        if d.task is None and ds.tasks and not given:
            raise ConfigError(f"{d.dataset}: name a task (--task, data.task): {', '.join(sorted(ds.tasks))}; or give "
                              "the windows yourself (tmin/tmax for event windows, window_s/stride_s for sliding ones)")
        return self

    def describe_recommended(self) -> str:
        """``"data.alignment = euclidean, train.max_epochs = 60, ..."``: the options taken from the
        dataset's recommended settings, with their values ("" when none)."""
        return ", ".join(f"{k} = {_short(self._option(k))}" for k in self.from_dataset)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)
