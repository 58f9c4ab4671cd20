"""What an attribid ONNX model must look like to be served.

Inputs
  ``features``  float32 [batch, steps, 64]  from kernels.featurize (left-aligned)
  ``mask``      float32 [batch, steps]      1 for a real touchpoint, 0 for padding
Outputs
  ``conversion``      float32 [batch]             P(conversion | journey)
  ``channel_credit``  float32 [batch, channels]   each channel's share of the credit;
                                                  >= 0, summing to 1 over the channels
                                                  present in the journey (0 elsewhere)
  ``attention``       float32 [batch, steps]      attention weights over touchpoints

Both batch and steps are dynamic axes. Metadata (ONNX ``metadata_props``, all
strings; JSON where structured) under the keys below.
"""
from __future__ import annotations

INPUT_FEATURES = "features"
INPUT_MASK = "mask"
OUTPUT_CONVERSION = "conversion"
OUTPUT_CREDIT = "channel_credit"
OUTPUT_ATTENTION = "attention"
OUTPUTS = (OUTPUT_CONVERSION, OUTPUT_CREDIT, OUTPUT_ATTENTION)

#: JSON list of channel names, in output order (index = featurizer channel code)
META_CHANNELS = "attribid.channels"
#: kernels.featurize.FEATURE_SPEC_VERSION the model was trained with
META_FEATURE_SPEC = "attribid.feature_spec_version"
#: longest journey (touchpoints) the model was trained on; serving truncates to it
META_MAX_LEN = "attribid.max_len"
#: a human-readable version string, e.g. "attribid-net-1+sim-seed7"
META_VERSION = "attribid.model_version"
#: JSON: training data summary (journeys, touchpoints, conversion rate, ...)
META_TRAINING = "attribid.training_summary"
#: JSON: held-out metrics (auc, log_loss, attribution accuracy, ...)
META_METRICS = "attribid.metrics"
#: JSON: {"base_rate": float} the conversion rate a fallback may assume
META_BASE_RATE = "attribid.base_rate"

#: "int8" for a quantized variant; absent means float32
META_PRECISION = "attribid.precision"
#: JSON: the int8 variant's parity gate against its float32 model (figures, bounds, "passed")
META_PARITY = "attribid.parity"
#: digest ("sha256:" + 12 hex) of the float32 file an int8 variant was quantized from
META_QUANTIZED_FROM = "attribid.quantized_from"

#: the float32 model's file name in a model folder
MODEL_FILE = "attribid.onnx"
#: its int8 variant's file name, beside it
INT8_MODEL_FILE = "attribid.int8.onnx"
#: where the shipped model lives, relative to this package
SHIPPED_MODEL = "shipped/" + MODEL_FILE
