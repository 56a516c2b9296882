//! FerrumQ operator library.
