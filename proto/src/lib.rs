//! agora-proto
