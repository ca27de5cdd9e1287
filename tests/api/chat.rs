//! Chat REST tests.
