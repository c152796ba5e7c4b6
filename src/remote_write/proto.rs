//! Protobuf messages (placeholder; filled in by the cloud work).
