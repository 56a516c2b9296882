//! Counting global allocator (filled by the infra work).
