//! agora-client
