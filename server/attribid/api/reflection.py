"""Server reflection as ``grpc.reflection.v1`` and ``grpc.reflection.v1alpha``, one implementation.

grpcio-reflection ships only v1alpha. The v1 protocol is the same messages under another
package (same fields, same numbers), so the v1 service is the v1alpha servicer registered
under the v1 name, and its descriptor is v1alpha's with the package renamed, so that
reflection can describe the v1 service as well.
"""
from __future__ import annotations

from typing import Any, Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FileDescriptor
from grpc_reflection.v1alpha import reflection as v1alpha
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha_pb2
from grpc_reflection.v1alpha import reflection_pb2_grpc as v1alpha_pb2_grpc

V1ALPHA_SERVICE_NAME: str = v1alpha.SERVICE_NAME
V1_PACKAGE = "grpc.reflection.v1"
V1_SERVICE_NAME = f"{V1_PACKAGE}.ServerReflection"
V1_FILE = "grpc/reflection/v1/reflection.proto"
METHOD = "ServerReflectionInfo"


def v1_file() -> FileDescriptor:
    """The v1 reflection descriptor, added to the default pool on first use."""
    pool = descriptor_pool.Default()
    try:
        return pool.FindFileByName(V1_FILE)
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    v1alpha_pb2.DESCRIPTOR.CopyToProto(proto)
    old = proto.package
    proto.name, proto.package = V1_FILE, V1_PACKAGE
    proto.ClearField("options")  # v1alpha's language options (Java package and the like)
    for message in proto.message_type:
        for field in message.field:
            if field.type_name.startswith(f".{old}."):
                field.type_name = f".{V1_PACKAGE}." + field.type_name[len(old) + 2:]
    for service in proto.service:
        for method in service.method:
            method.input_type = method.input_type.replace(f".{old}.", f".{V1_PACKAGE}.", 1)
            method.output_type = method.output_type.replace(f".{old}.", f".{V1_PACKAGE}.", 1)
    pool.AddSerializedFile(proto.SerializeToString())
    return pool.FindFileByName(V1_FILE)


def v1_messages() -> tuple[type[Any], type[Any]]:
    """(ServerReflectionRequest, ServerReflectionResponse) of the v1 package, for clients.

    >>> request, response = v1_messages()
    >>> request.DESCRIPTOR.full_name
    'grpc.reflection.v1.ServerReflectionRequest'
    """
    messages = v1_file().message_types_by_name
    return (message_factory.GetMessageClass(messages["ServerReflectionRequest"]),
            message_factory.GetMessageClass(messages["ServerReflectionResponse"]))


def enable(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Serve reflection v1 and v1alpha on ``server``, listing ``service_names`` and both."""
    v1_file()
    names = (*service_names, V1ALPHA_SERVICE_NAME, V1_SERVICE_NAME)
    servicer = v1alpha.aio.ReflectionServicer(names)
    v1alpha_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    # The wire format is identical, so v1 calls are read and answered with v1alpha messages.
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=v1alpha_pb2.ServerReflectionRequest.FromString,
        response_serializer=v1alpha_pb2.ServerReflectionResponse.SerializeToString)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(V1_SERVICE_NAME, {METHOD: handler}),))
