//! Shared helpers for FerrumQ benchmarks.
