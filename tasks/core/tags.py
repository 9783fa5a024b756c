"""Every name loopline writes into MLflow: the registry aliases and the `loopline.*` tag keys.

Runs, model versions and the monitoring runs are tagged with these keys; the CLI, the gate and
the lineage read them back. Defined once here so a writer and its readers cannot drift apart.
"""

from __future__ import annotations

# Registry aliases: `champion` serves, `challenger` is the latest candidate, `previous` the one
# the last promotion replaced (where a rollback goes).
CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
ALIASES = (CHAMPION, CHALLENGER, PREVIOUS)

PREFIX = "loopline."

# What a model version is and where it came from (lineage).
VARIANT = "loopline.variant"
WINDOW = "loopline.window"  # "start..end" of the training window
THRESHOLD = "loopline.threshold"
RUN_ID = "loopline.run_id"
PARENT_RUN_ID = "loopline.parent_run_id"
PARAMS_HASH = "loopline.params_hash"
GIT_COMMIT = "loopline.git_commit"
DATA_FINGERPRINT = "loopline.data_fingerprint"
DATASET = "loopline.dataset"
DVC_LOCK_HASH = "loopline.dvc_lock_hash"
PREFECT_FLOW_RUN_ID = "loopline.prefect_flow_run_id"
TEACHER_MODEL = "loopline.teacher_model"
TEACHER_VERSION = "loopline.teacher_version"
TEACHER_RUN_ID = "loopline.teacher_run_id"
SELECTION = "loopline.selection"
# On a teacher or student run: the champion version its weights started from ("v3"), or
# "scratch: " and why not.
WARM_START = "loopline.warm_start"
MODEL_URI = "loopline.model_uri"
MODEL_VERSION = "loopline.model_version"
REGISTERED_MODEL = "loopline.registered_model"  # on a training's parent run, with MODEL_VERSION
TEST_ROC_AUC = "loopline.test_roc_auc"
LATENCY_MS_P95 = "loopline.latency_ms_p95"

# The files of a registered version, checked when it is loaded.
WEIGHTS_SHA256 = "loopline.weights_sha256"
CONFIG_SHA256 = "loopline.config_sha256"
FEATURIZER_SHA256 = "loopline.featurizer_sha256"

# What it cost.
TRAINING_COST = "loopline.training_cost"
TRAINING_CPU_S = "loopline.training_cpu_s"
TRAINING_WALL_S = "loopline.training_wall_s"
COST_PER_MILLION = "loopline.cost_per_million"
MACHINE_PREFIX = "loopline.machine."

# The gate's decision, on the version it judged.
DECISION = "loopline.decision"
DECISION_REASONS = "loopline.decision_reasons"
DECIDED_BY = "loopline.decided_by"
DECIDED_AT = "loopline.decided_at"
COMPARED_TO = "loopline.compared_to"
PROMOTION = "loopline.promotion"
# The last line of a version's description: the gate's verdict (rewritten by each decision).
VERDICT_PREFIX = "Gate verdict:"

# Monitoring and retraining.
DATE = "loopline.date"  # on a monitoring run: the latest day it logged
TRIGGER = "loopline.trigger"
MONITORED = "loopline.monitored"  # `model/version` a monitoring run follows
RETRAIN_REASONS = "loopline.retrain_reasons"  # the latest day's retrain decision and reasons
