//! Integration tests through real gRPC on loopback.
