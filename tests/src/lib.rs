//! agora-tests
