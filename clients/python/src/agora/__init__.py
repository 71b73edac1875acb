"""Agora's Python client.

``agora.v1`` holds the stubs generated from the repository's proto/ when
the package was built (``broker_pb2``, ``broker_pb2_grpc``, ``resources_pb2``,
``admin_pb2``, ``errors_pb2``...).
"""
