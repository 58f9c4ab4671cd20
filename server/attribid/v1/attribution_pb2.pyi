from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Interaction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTERACTION_UNSPECIFIED: _ClassVar[Interaction]
    INTERACTION_IMPRESSION: _ClassVar[Interaction]
    INTERACTION_CLICK: _ClassVar[Interaction]

class Device(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEVICE_UNSPECIFIED: _ClassVar[Device]
    DEVICE_DESKTOP: _ClassVar[Device]
    DEVICE_MOBILE: _ClassVar[Device]
    DEVICE_TABLET: _ClassVar[Device]
INTERACTION_UNSPECIFIED: Interaction
INTERACTION_IMPRESSION: Interaction
INTERACTION_CLICK: Interaction
DEVICE_UNSPECIFIED: Device
DEVICE_DESKTOP: Device
DEVICE_MOBILE: Device
DEVICE_TABLET: Device

class Touchpoint(_message.Message):
    __slots__ = ("channel", "timestamp_ms", "interaction", "cost", "device")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    channel: str
    timestamp_ms: int
    interaction: Interaction
    cost: float
    device: Device
    def __init__(self, channel: _Optional[str] = ..., timestamp_ms: _Optional[int] = ..., interaction: _Optional[_Union[Interaction, str]] = ..., cost: _Optional[float] = ..., device: _Optional[_Union[Device, str]] = ...) -> None: ...

class ImpressionContext(_message.Message):
    __slots__ = ("channel", "floor_price", "timestamp_ms")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    FLOOR_PRICE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    channel: str
    floor_price: float
    timestamp_ms: int
    def __init__(self, channel: _Optional[str] = ..., floor_price: _Optional[float] = ..., timestamp_ms: _Optional[int] = ...) -> None: ...

class ScoreRequest(_message.Message):
    __slots__ = ("request_id", "campaign_id", "journey", "impression", "product_category")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_FIELD_NUMBER: _ClassVar[int]
    IMPRESSION_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    campaign_id: str
    journey: _containers.RepeatedCompositeFieldContainer[Touchpoint]
    impression: ImpressionContext
    product_category: str
    def __init__(self, request_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., journey: _Optional[_Iterable[_Union[Touchpoint, _Mapping]]] = ..., impression: _Optional[_Union[ImpressionContext, _Mapping]] = ..., product_category: _Optional[str] = ...) -> None: ...

class ScoreError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class ScoreResponse(_message.Message):
    __slots__ = ("request_id", "conversion_probability", "credit", "bid", "impression_bid", "model_version", "fallback", "fallback_reason", "truncated", "touchpoints_used", "error")
    class CreditEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class BidEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    CREDIT_FIELD_NUMBER: _ClassVar[int]
    BID_FIELD_NUMBER: _ClassVar[int]
    IMPRESSION_BID_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    TOUCHPOINTS_USED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    conversion_probability: float
    credit: _containers.ScalarMap[str, float]
    bid: _containers.ScalarMap[str, float]
    impression_bid: float
    model_version: str
    fallback: bool
    fallback_reason: str
    truncated: bool
    touchpoints_used: int
    error: ScoreError
    def __init__(self, request_id: _Optional[str] = ..., conversion_probability: _Optional[float] = ..., credit: _Optional[_Mapping[str, float]] = ..., bid: _Optional[_Mapping[str, float]] = ..., impression_bid: _Optional[float] = ..., model_version: _Optional[str] = ..., fallback: _Optional[bool] = ..., fallback_reason: _Optional[str] = ..., truncated: _Optional[bool] = ..., touchpoints_used: _Optional[int] = ..., error: _Optional[_Union[ScoreError, _Mapping]] = ...) -> None: ...

class ChannelOutcome(_message.Message):
    __slots__ = ("channel", "spend", "conversions", "revenue", "impressions")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SPEND_FIELD_NUMBER: _ClassVar[int]
    CONVERSIONS_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    channel: str
    spend: float
    conversions: float
    revenue: float
    impressions: float
    def __init__(self, channel: _Optional[str] = ..., spend: _Optional[float] = ..., conversions: _Optional[float] = ..., revenue: _Optional[float] = ..., impressions: _Optional[float] = ...) -> None: ...

class ReportOutcomesRequest(_message.Message):
    __slots__ = ("batch_id", "campaign_id", "outcomes", "period_end_ms")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_MS_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    campaign_id: str
    outcomes: _containers.RepeatedCompositeFieldContainer[ChannelOutcome]
    period_end_ms: int
    def __init__(self, batch_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., outcomes: _Optional[_Iterable[_Union[ChannelOutcome, _Mapping]]] = ..., period_end_ms: _Optional[int] = ...) -> None: ...

class ReportOutcomesResponse(_message.Message):
    __slots__ = ("duplicate", "accepted", "allocation_version")
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_VERSION_FIELD_NUMBER: _ClassVar[int]
    duplicate: bool
    accepted: int
    allocation_version: int
    def __init__(self, duplicate: _Optional[bool] = ..., accepted: _Optional[int] = ..., allocation_version: _Optional[int] = ...) -> None: ...

class Conversion(_message.Message):
    __slots__ = ("conversion_id", "timestamp_ms", "value", "journey")
    CONVERSION_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_FIELD_NUMBER: _ClassVar[int]
    conversion_id: str
    timestamp_ms: int
    value: float
    journey: _containers.RepeatedCompositeFieldContainer[Touchpoint]
    def __init__(self, conversion_id: _Optional[str] = ..., timestamp_ms: _Optional[int] = ..., value: _Optional[float] = ..., journey: _Optional[_Iterable[_Union[Touchpoint, _Mapping]]] = ...) -> None: ...

class NonConvertingJourney(_message.Message):
    __slots__ = ("journey",)
    JOURNEY_FIELD_NUMBER: _ClassVar[int]
    journey: _containers.RepeatedCompositeFieldContainer[Touchpoint]
    def __init__(self, journey: _Optional[_Iterable[_Union[Touchpoint, _Mapping]]] = ...) -> None: ...

class ReportConversionsRequest(_message.Message):
    __slots__ = ("batch_id", "campaign_id", "conversions", "non_converting")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSIONS_FIELD_NUMBER: _ClassVar[int]
    NON_CONVERTING_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    campaign_id: str
    conversions: _containers.RepeatedCompositeFieldContainer[Conversion]
    non_converting: _containers.RepeatedCompositeFieldContainer[NonConvertingJourney]
    def __init__(self, batch_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., conversions: _Optional[_Iterable[_Union[Conversion, _Mapping]]] = ..., non_converting: _Optional[_Iterable[_Union[NonConvertingJourney, _Mapping]]] = ...) -> None: ...

class ReportConversionsResponse(_message.Message):
    __slots__ = ("duplicate", "accepted", "credited_conversions", "credited_value", "allocation_version", "attribution")
    class CreditedConversionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class CreditedValueEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    CREDITED_CONVERSIONS_FIELD_NUMBER: _ClassVar[int]
    CREDITED_VALUE_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_VERSION_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    duplicate: bool
    accepted: int
    credited_conversions: _containers.ScalarMap[str, float]
    credited_value: _containers.ScalarMap[str, float]
    allocation_version: int
    attribution: str
    def __init__(self, duplicate: _Optional[bool] = ..., accepted: _Optional[int] = ..., credited_conversions: _Optional[_Mapping[str, float]] = ..., credited_value: _Optional[_Mapping[str, float]] = ..., allocation_version: _Optional[int] = ..., attribution: _Optional[str] = ...) -> None: ...

class GetAllocationRequest(_message.Message):
    __slots__ = ("campaign_id",)
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    def __init__(self, campaign_id: _Optional[str] = ...) -> None: ...

class ObjectiveWeights(_message.Message):
    __slots__ = ("revenue", "acquisitions", "exposure")
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    ACQUISITIONS_FIELD_NUMBER: _ClassVar[int]
    EXPOSURE_FIELD_NUMBER: _ClassVar[int]
    revenue: float
    acquisitions: float
    exposure: float
    def __init__(self, revenue: _Optional[float] = ..., acquisitions: _Optional[float] = ..., exposure: _Optional[float] = ...) -> None: ...

class ChannelConstraint(_message.Message):
    __slots__ = ("name", "min", "max", "value_per_conversion")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    VALUE_PER_CONVERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    min: float
    max: float
    value_per_conversion: float
    def __init__(self, name: _Optional[str] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., value_per_conversion: _Optional[float] = ...) -> None: ...

class ConfigureCampaignRequest(_message.Message):
    __slots__ = ("campaign_id", "budget", "flight_start_ms", "flight_end_ms", "objective", "max_cpa", "channels", "bid_floor", "bid_cap", "attribution")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    FLIGHT_START_MS_FIELD_NUMBER: _ClassVar[int]
    FLIGHT_END_MS_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    MAX_CPA_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    BID_FLOOR_FIELD_NUMBER: _ClassVar[int]
    BID_CAP_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    budget: float
    flight_start_ms: int
    flight_end_ms: int
    objective: ObjectiveWeights
    max_cpa: float
    channels: _containers.RepeatedCompositeFieldContainer[ChannelConstraint]
    bid_floor: float
    bid_cap: float
    attribution: str
    def __init__(self, campaign_id: _Optional[str] = ..., budget: _Optional[float] = ..., flight_start_ms: _Optional[int] = ..., flight_end_ms: _Optional[int] = ..., objective: _Optional[_Union[ObjectiveWeights, _Mapping]] = ..., max_cpa: _Optional[float] = ..., channels: _Optional[_Iterable[_Union[ChannelConstraint, _Mapping]]] = ..., bid_floor: _Optional[float] = ..., bid_cap: _Optional[float] = ..., attribution: _Optional[str] = ...) -> None: ...

class Allocation(_message.Message):
    __slots__ = ("campaign_id", "spend", "share", "revenue", "acquisitions", "exposure", "cpa", "objective", "solved_at_ms", "version", "pacing", "stale", "stale_reason", "attribution")
    class SpendEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ShareEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    SPEND_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    ACQUISITIONS_FIELD_NUMBER: _ClassVar[int]
    EXPOSURE_FIELD_NUMBER: _ClassVar[int]
    CPA_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    SOLVED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PACING_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    STALE_REASON_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    spend: _containers.ScalarMap[str, float]
    share: _containers.ScalarMap[str, float]
    revenue: float
    acquisitions: float
    exposure: float
    cpa: float
    objective: float
    solved_at_ms: int
    version: int
    pacing: float
    stale: bool
    stale_reason: str
    attribution: str
    def __init__(self, campaign_id: _Optional[str] = ..., spend: _Optional[_Mapping[str, float]] = ..., share: _Optional[_Mapping[str, float]] = ..., revenue: _Optional[float] = ..., acquisitions: _Optional[float] = ..., exposure: _Optional[float] = ..., cpa: _Optional[float] = ..., objective: _Optional[float] = ..., solved_at_ms: _Optional[int] = ..., version: _Optional[int] = ..., pacing: _Optional[float] = ..., stale: _Optional[bool] = ..., stale_reason: _Optional[str] = ..., attribution: _Optional[str] = ...) -> None: ...

class ReloadModelRequest(_message.Message):
    __slots__ = ("model_path",)
    MODEL_PATH_FIELD_NUMBER: _ClassVar[int]
    model_path: str
    def __init__(self, model_path: _Optional[str] = ...) -> None: ...

class ReloadModelResponse(_message.Message):
    __slots__ = ("old_version", "new_version", "reloaded", "detail")
    OLD_VERSION_FIELD_NUMBER: _ClassVar[int]
    NEW_VERSION_FIELD_NUMBER: _ClassVar[int]
    RELOADED_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    old_version: str
    new_version: str
    reloaded: bool
    detail: str
    def __init__(self, old_version: _Optional[str] = ..., new_version: _Optional[str] = ..., reloaded: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...
