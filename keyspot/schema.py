"""The config schema: every key of conf/ and params.yaml, with its type, its
default and what values it allows, declared once.

The classes are Hydra structured configs. `register()` puts them in Hydra's
ConfigStore, so that composing conf/ (`keyspot compose`, `dvc exp run`)
already refuses an unknown key or a value of the wrong type and names it.
conf/ then holds values only: a group's options and what differs from these
defaults. keyspot.params reads params.yaml back into these classes and
applies the rest of the rules: the ranges and choices in each field's
metadata, and each class's `validate()` across its keys.

A dataset source declares its own keys in its module (keyspot/data/), an
architecture its hyperparameters in its module (keyspot/models/); both are
found by name (keyspot.data.sources, keyspot.models).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from keyspot.data.engines import ENGINES

RECOGNIZER_MAX_RESULTS = 64   # KEYSPOT_RECOGNIZER_MAX_RESULTS in firmware/core/recognizer.h


class SchemaError(ValueError):
    """A value outside what its key allows; keyspot.params names the key and file."""


@dataclass(frozen=True)
class Range:
    """Allowed values of a number: low/high bounds, each closed unless open."""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def admits(self, v: float) -> bool:
        return ((self.low is None or (v > self.low if self.low_open else v >= self.low))
                and (self.high is None or (v < self.high if self.high_open else v <= self.high)))

    def __str__(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        return " and ".join(parts)


POSITIVE = Range(low=0, low_open=True)
NOT_NEGATIVE = Range(low=0)
AT_LEAST_ONE = Range(low=1)
FRACTION = Range(0, 1)               # a probability or a share
BELOW_ONE = Range(0, 1, high_open=True)


def setting(default=dataclasses.MISSING, *, allowed: Range | None = None, choices=None,
            ordered: bool = False):
    """A field with its default and rules: `allowed` bounds a number (each
    element of a list), `choices` lists the allowed values, and `ordered`
    marks a [low, high] pair whose first must not exceed its second.
    A list or mapping default is copied for each instance."""
    metadata = {"allowed": allowed, "choices": tuple(choices) if choices else None, "ordered": ordered}
    if isinstance(default, (list, tuple, dict)):
        value = default
        return field(default_factory=lambda: type(value)(value), metadata=metadata)
    return field(default=default, metadata=metadata)


def fail(key: str, message: str):
    raise SchemaError(f"{key}: {message}")


# ---------------------------------------------------------------- where it runs, where it logs

@dataclass
class Tracking:
    # MLFLOW_TRACKING_URI, when set, wins over this. A relative sqlite path is
    # resolved against the repository root.
    uri: str = "sqlite:///mlflow.db"
    # Empty means one experiment per dataset: keyspot-<dataset.name>.
    experiment: str = ""
    # quantize registers each int8 model as a version of this MLflow registered
    # model (empty: keyspot-<dataset.name>-<model.name>) and points the alias
    # at it, so firmware builds and deploys can ask for `models:/<name>@<alias>`.
    registered_model: str = ""
    alias: str = "candidate"


@dataclass
class Backend:
    """Where the features and train stages run: here, or as SageMaker jobs
    running the same code (settings in `sagemaker`). Never changes an output,
    so dvc.yaml lists no key of it."""
    features: str = setting("local", choices=("local", "sagemaker"))   # a processing job
    train: str = setting("local", choices=("local", "sagemaker"))      # a training job


@dataclass
class Spot:
    enabled: bool = True        # managed spot training: up to 90 % cheaper, may wait for capacity
    max_wait_s: int = 14400     # waiting plus running; at least max_runtime_s


@dataclass
class SageMakerJobs:
    """SageMaker jobs for backend.features / backend.train = sagemaker
    (keyspot/sagemaker_jobs/), checked there when a backend uses them. The jobs
    run the same keyspot code as a local run, so none of these keys changes an
    output. Credentials and endpoints come from the usual AWS places, never from here."""
    region: str = "us-east-1"
    # The execution role. Leave it empty here: export KEYSPOT_SAGEMAKER_ROLE, or
    # pass -S sagemaker.role_arn=... for one run. Account ids stay out of the repository.
    role_arn: str = ""
    bucket: str = ""                   # S3 bucket for inputs, code, outputs and checkpoints; required
    prefix: str = "keyspot/sagemaker"  # under it: inputs/, code/, jobs/, checkpoints/
    # Empty: the AWS TensorFlow training image of framework_version for the region
    # and instance type (CPU or GPU). A custom image must hold the SageMaker
    # training toolkit, as the AWS framework images do.
    image: str = ""
    # The TensorFlow of requirements.lock, so jobs compute what a local run does.
    framework_version: str = "2.21"
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1            # keyspot trains and extracts on one instance
    volume_gb: int = 30                # the instance's disk: inputs, outputs, checkpoints
    max_runtime_s: int = 7200          # SageMaker stops a job after this long (cost cap)
    spot: Spot = field(default_factory=Spot)
    tags: dict[str, str] = setting({})   # added to every job, e.g. {project: kws, cost-centre: research}
    stream_logs: bool = True           # print the job's CloudWatch logs while it runs
    poll_s: int = 20                   # seconds between status checks


# ---------------------------------------------------------------- what the stages compute

@dataclass
class Features:
    """The feature frontend, the same in training, on the server and on the device."""
    kind: str = setting("mfcc", choices=("mfcc", "log_mel"))
    window_ms: float = setting(30.0, allowed=POSITIVE)
    hop_ms: float = setting(20.0, allowed=POSITIVE)
    fft_size: int = setting(512, allowed=Range(16, 65536))   # a power of two, at least the window
    mel_bins: int = setting(40, allowed=AT_LEAST_ONE)
    mel_fmin: float = setting(20.0, allowed=NOT_NEGATIVE)
    # Up to the Nyquist frequency of 16 kHz audio: the fricatives and bursts
    # above 4 kHz tell "yes" from "yet" and "stop" from "stock".
    mel_fmax: float = setting(8000.0, allowed=POSITIVE)
    num_mfcc: int = setting(10, allowed=AT_LEAST_ONE)
    log_floor: float = setting(1.0e-10, allowed=POSITIVE)    # power floor before 10*log10

    def validate(self, key: str) -> None:
        if self.mel_fmin >= self.mel_fmax:
            fail(f"{key}.mel_fmin", f"{self.mel_fmin:g} Hz must be below {key}.mel_fmax ({self.mel_fmax:g} Hz)")
        if self.fft_size & (self.fft_size - 1):
            fail(f"{key}.fft_size", f"{self.fft_size} is not a power of two (the firmware's FFT needs one); "
                                    f"try {1 << self.fft_size.bit_length()}")
        if self.num_mfcc > self.mel_bins:
            fail(f"{key}.num_mfcc", f"must not exceed {key}.mel_bins")


@dataclass
class Augment:
    """Fresh random variations of the training clips every epoch,
    deterministic from the seed (keyspot/augment.py)."""
    prob: float = setting(0.5, allowed=FRACTION)          # share of clips augmented each epoch
    # Resampled by a factor drawn from this range: faster and higher, or slower
    # and lower, as a voice with a shorter or longer vocal tract would say it.
    # [1, 1] turns it off.
    speed_range: tuple[float, float] = setting((0.85, 1.15), allowed=Range(0.5, 2), ordered=True)
    shift_ms: float = setting(100.0, allowed=NOT_NEGATIVE)   # time shift up to +-shift_ms, zero filled
    gain_db_range: tuple[float, float] = setting((-6.0, 6.0), ordered=True)
    noise_prob: float = setting(0.8, allowed=FRACTION)    # of augmented clips, how many get background noise
    # Noise from the training split's _silence_ clips.
    noise_snr_db_range: tuple[float, float] = setting((10.0, 30.0), ordered=True)
    # Timbre: of augmented clips, how many go through a random smooth
    # equaliser, a gain in +-timbre_db at timbre_points mel-spaced
    # frequencies: another voice, engine or microphone colours speech so,
    # and the model should not hold on to one colouring.
    timbre_prob: float = setting(0.8, allowed=FRACTION)
    timbre_db: float = setting(6.0, allowed=NOT_NEGATIVE)
    timbre_points: int = setting(6, allowed=Range(low=2))
    time_masks: int = setting(1, allowed=NOT_NEGATIVE)    # SpecAugment: bands of frames set to the mean
    time_mask_frames: int = setting(5, allowed=NOT_NEGATIVE)
    freq_masks: int = setting(1, allowed=NOT_NEGATIVE)    # and bands of coefficients
    # Up to 6 of the default's 40 log-mel bands: an unseen engine or voice
    # puts its energy in other bands, and wider masks (6 rather than 2) raised
    # the unseen-engine test by 3.5 points over three draws. On 10 MFCCs, 2.
    freq_mask_bins: int = setting(6, allowed=NOT_NEGATIVE)


@dataclass
class Train:
    epochs: int = setting(18, allowed=AT_LEAST_ONE)       # at most; early stopping usually ends sooner
    # Stop after this many epochs without a better val accuracy (0: never).
    patience: int = setting(30, allowed=NOT_NEGATIVE)
    batch_size: int = setting(64, allowed=AT_LEAST_ONE)
    lr: float = setting(0.006, allowed=POSITIVE)
    lr_min: float = setting(0.0001, allowed=NOT_NEGATIVE)  # cosine decay from lr to lr_min over the epochs
    label_smoothing: float = setting(0.05, allowed=BELOW_ONE)
    # Class balance: inverse-frequency weights to this power. 1 counts every class
    # alike (for balanced accuracy); 0 counts every clip alike (for accuracy).
    class_weight_power: float = setting(0.0, allowed=FRACTION)
    # A training clip of one of these speech engines counts this many times
    # as much as another (keyspot/data/engines.py names them; clips of other
    # sources count once). Natural voices are under a tenth of the training
    # clips, yet what real voices sound like. Weighted 2x, they moved the
    # unseen engine from 0.6288 to 0.6572 and left the unseen speakers
    # where they were; 4x moved the unseen engine to 0.6756 but cost the
    # unseen speakers 2.3 points.
    engine_weights: dict[str, float] = setting({"piper": 2.0, "kokoro": 2.0}, allowed=POSITIVE)
    # Another draw of the same training on the same data: initial weights,
    # order, augmentation and dropout come from seed + seed_offset. Runs
    # that differ only in it show the spread that a change must beat.
    seed_offset: int = setting(0, allowed=NOT_NEGATIVE)
    augment: Augment = field(default_factory=Augment)

    def validate(self, key: str) -> None:
        if self.lr_min > self.lr:
            fail(f"{key}.lr_min", f"{self.lr_min:g} is above {key}.lr ({self.lr:g})")
        unknown = sorted(set(self.engine_weights) - set(ENGINES))
        if unknown:
            fail(f"{key}.engine_weights", f"no speech engine is called {', '.join(unknown)}; "
                 f"they are {', '.join(ENGINES)}")


@dataclass
class Quantize:
    calibration_samples: int = setting(400, allowed=AT_LEAST_ONE)   # drawn from the training split
    arena_headroom: float = setting(1.0, allowed=Range(low=1))     # multiply the measured TFLM arena bytes


@dataclass
class Recognizer:
    """The recognizer on the device (firmware/core/recognizer.h): a model
    result every 100 ms; scores of the last average_window_ms averaged per
    label; the top label reported when its average exceeds
    detection_threshold (of 255), it is not _silence_ or _unknown_ (found by
    name in the labels), at least minimum_count results are in the window,
    and nothing was reported in the last suppression_ms. The calibrate stage
    chooses the parameters the firmware gets (recognizer_config.h); these
    are what it gets with calibrate.enabled false."""
    average_window_ms: int = setting(1000, allowed=AT_LEAST_ONE)
    detection_threshold: int = setting(200, allowed=Range(0, 255))
    suppression_ms: int = setting(1500, allowed=NOT_NEGATIVE)
    minimum_count: int = setting(3, allowed=Range(1, RECOGNIZER_MAX_RESULTS))


@dataclass
class Streams:
    """The continuous streams the device is measured on (the streams stage,
    keyspot/data/streams.py): one per held-out split, its clips laid one
    after another on a bed of the split's quiet."""
    minutes: float = setting(20.0, allowed=POSITIVE)   # per split, at most: as long as its clips last
    # The validation stream, which calibrate fits the recognizer to: long
    # enough for its target rate to allow a false accept (an hour of stream
    # is a little under 60 minutes of words). At 1 per hour, 20 minutes
    # allowed none, and the chosen point followed the one near miss that
    # scored most like a keyword: it made 7 false accepts per hour on 60.
    val_minutes: float = setting(90.0, allowed=POSITIVE)
    gap_seconds: tuple[float, float] = setting((1.5, 4.5), allowed=NOT_NEGATIVE, ordered=True)  # quiet between words
    keyword_fraction: float = setting(0.5, allowed=FRACTION)   # of the words laid, the rest _unknown_
    bed_hold_seconds: float = setting(10.0, allowed=POSITIVE)  # one kind of quiet held this long


@dataclass
class Calibrate:
    """The recognizer's parameters, chosen on the validation stream (the
    calibrate stage, keyspot/streaming.py): the fewest false rejects at no
    more than target_false_accepts_per_hour. c-export writes the choice into
    the firmware; disabled, export.recognizer goes there as it is."""
    enabled: bool = True
    target_false_accepts_per_hour: float = setting(1.0, allowed=NOT_NEGATIVE)
    # The sets tried: every combination, and every threshold_step-th threshold of 0..255.
    average_window_ms: tuple[int, ...] = setting((300, 500, 750, 1000), allowed=NOT_NEGATIVE)
    minimum_count: tuple[int, ...] = setting((1, 2, 3, 5), allowed=Range(1, RECOGNIZER_MAX_RESULTS))
    suppression_ms: tuple[int, ...] = setting((1000, 1500), allowed=NOT_NEGATIVE)
    threshold_step: int = setting(4, allowed=Range(1, 255))

    def validate(self, key: str) -> None:
        for name in ("average_window_ms", "minimum_count", "suppression_ms"):
            if self.enabled and not getattr(self, name):
                fail(f"{key}.{name}", "lists no value to try; give at least one, or set calibrate.enabled=false")


@dataclass
class Export:
    # Where c-export writes; everything else in firmware/ is hand-written.
    out_dir: str = "firmware/psoc6/source/generated"
    # tflm: the .tflite as a C array for TensorFlow Lite Micro, with a generated op
    #   resolver. c: the model as plain C for keyspot's own int8 engine
    #   (firmware/core/engine), bit-exact with TFLite's reference kernels, less RAM.
    engine: str = setting("tflm", choices=("tflm", "c"))
    recognizer: Recognizer = field(default_factory=Recognizer)


@dataclass
class Deploy:
    """The SageMaker endpoint (keyspot/deploy/sagemaker.py); checked there when enabled."""
    enabled: bool = False          # true creates or updates a real SageMaker endpoint
    region: str = "us-east-1"
    # The TensorFlow Serving inference image (the sagemaker SDK's table). The
    # SDK lists none for sagemaker.framework_version (2.21): 2.20 is the
    # newest, one minor version behind the TensorFlow that wrote the SavedModel.
    framework_version: str = "2.20"
    bucket: str = ""               # S3 bucket for model.tar.gz; required when enabled
    prefix: str = "keyspot"
    endpoint_name: str = "keyspot-kws"
    # The execution role. Leave it empty here: export KEYSPOT_SAGEMAKER_ROLE, or
    # pass -S deploy.role_arn=... for one run. Account ids stay out of the repository.
    role_arn: str = ""
    serverless: bool = False       # true: pay per request (serverless_*); false: instance_type x instance_count
    instance_type: str = "ml.t2.medium"
    instance_count: int = 1
    serverless_memory_mb: int = 2048     # 1024 to 6144, in steps of 1024
    serverless_max_concurrency: int = 5
    wait_minutes: int = 30         # for the endpoint to be InService (or deleted)


# ---------------------------------------------------------------- the whole config

@dataclass
class Config:
    """params.yaml. `dataset` and `model` take the schema of the chosen
    source (dataset.name) and architecture (model.architecture)."""
    seed: int = setting(42, allowed=NOT_NEGATIVE)
    tracking: Tracking = field(default_factory=Tracking)
    dataset: Any = None
    features: Features = field(default_factory=Features)
    model: Any = None
    train: Train = field(default_factory=Train)
    quantize: Quantize = field(default_factory=Quantize)
    streams: Streams = field(default_factory=Streams)
    calibrate: Calibrate = field(default_factory=Calibrate)
    export: Export = field(default_factory=Export)
    deploy: Deploy = field(default_factory=Deploy)
    backend: Backend = field(default_factory=Backend)
    sagemaker: SageMakerJobs = field(default_factory=SageMakerJobs)

    def validate(self, key: str) -> None:
        """Rules across groups."""
        rate = self.dataset.sample_rate
        if self.features.mel_fmax > rate / 2:
            fail("features.mel_fmax", f"{self.features.mel_fmax:g} Hz is above the Nyquist frequency of "
                 f"dataset.sample_rate ({rate} Hz); set it to {rate / 2:g} or less")
        window = round(rate * self.features.window_ms / 1000)
        if window > self.features.fft_size:
            fail("features.fft_size", f"{self.features.fft_size} is shorter than the {window}-sample window; "
                                      "raise it or shorten features.window_ms")


# Hydra's names for the schemas: the root, then one per source and architecture.
ROOT = "keyspot_schema"
DATASET_GROUP = "schema/dataset"
MODEL_GROUP = "schema/model"


def register() -> None:
    """Store the schemas in Hydra's ConfigStore: conf/config.yaml extends
    ROOT, and conf/dataset/<x>.yaml and conf/model/<x>.yaml extend
    /schema/dataset/<source> and /schema/model/<architecture>."""
    from hydra.core.config_store import ConfigStore

    from keyspot.data.sources import sources
    from keyspot.models import architectures

    store = ConfigStore.instance()
    store.store(name=ROOT, node=Config)
    for name, source in sources().items():
        store.store(group=DATASET_GROUP, name=name, node=source.schema)
    for name, architecture in architectures().items():
        store.store(group=MODEL_GROUP, name=name, node=architecture.schema)
