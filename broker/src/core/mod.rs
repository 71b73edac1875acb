//! The sans-IO core.
